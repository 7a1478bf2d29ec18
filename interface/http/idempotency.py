"""Repeated commands at the edge: the ``Idempotency-Key`` request header and
how a repeat is answered.

Every command is idempotent by the id its request carries (``id_field``,
``application.commands``), and a repeat answers exactly its first answer
(built again from what the first execution committed; see
``application.outcomes``). HTTP adds two things here:

- A repeat is told apart: status 200 (a first execution of a creating
  route answers 201) and ``Idempotent-Replayed: true``.
- ``Idempotency-Key`` (IETF httpapi draft "The Idempotency-Key HTTP Header
  Field") is accepted, as a structured-field string (``"<uuid>"``) or a
  bare token, but the ledger keeps no keys of its own: the command's id is
  its key, so a given key must equal that id (422 ``invalid_request``
  naming both fields otherwise). A route whose command has no id (a batch,
  whose items are idempotent by their own ids; freeze, allowances,
  wallets, prices, which set a state) refuses a key rather than ignore a
  promise it could not keep.
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from fastapi import Response

from application.commands import Command
from application.outcomes import Outcome
from domain.errors import InvalidRequest

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LENGTH_MAX = 100
"""A UUID, quoted or braced, is at most 45 characters; the rest is room."""

OutcomeT = TypeVar("OutcomeT", bound=Outcome)
CommandT = TypeVar("CommandT", bound=Command)

KEY_DESCRIPTION = (
    "Optional (IETF httpapi Idempotency-Key draft): the command's id, as a structured-field "
    "string (`\"<uuid>\"`) or bare. It must equal the id the command carries (named by the "
    "422 otherwise); the ledger is idempotent by that id with or without the header."
)

REPLAYED = {
    "description": "a repeat of an earlier request with the same id: exactly its first answer",
    "headers": {REPLAYED_HEADER: {
        "description": "`true` on a repeat, which answers exactly the first answer and "
                       "changed nothing; absent on a first execution",
        "schema": {"type": "string", "enum": ["true"]},
    }},
}


REPLAYED_STATE = {
    "description": "the state asked for was already so: the answer of the command that made "
                   "it so (its position), with `Idempotent-Replayed: true`",
    "headers": REPLAYED["headers"],
}


def parse_key(text: str | None) -> UUID | None:
    """The header's UUID, or None when absent; a value that is not one is
    refused, naming the header."""
    if text is None:
        return None
    value = text.strip()
    if "," in value:  # several lines, or a list in one: which key was meant?
        raise InvalidRequest(f"the {KEY_HEADER} header must be given once, with one id")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    try:
        return UUID(value)
    except ValueError:
        raise InvalidRequest(
            f"the {KEY_HEADER} header must be the command's id, a UUID"
        ) from None


def check_key(key: UUID | None, id_field: str | None, command_id: UUID | None,
              *, what: str = "this command") -> None:
    """A given key must equal the command's id (``id_field``)."""
    if key is None:
        return
    if id_field is None or command_id is None:
        raise InvalidRequest(
            f"{what} has no id for the {KEY_HEADER} header to name; send it without one")
    if key != command_id:
        raise InvalidRequest(
            f"the {KEY_HEADER} header ({key}) does not equal {id_field} ({command_id}); "
            f"the key must be the command's {id_field}")


def keyed(command: CommandT, key: UUID | None, *, what: str = "this command") -> CommandT:
    """``command``, once a given ``Idempotency-Key`` is known to name it."""
    check_key(key, command.id_field, command.command_id, what=what)
    return command


def replay_aware(response: Response, outcome: OutcomeT, *, created: bool = True) -> OutcomeT:
    """A first execution answers 201 (``created``) or the route's 200; a
    repeat answers 200 with ``Idempotent-Replayed: true``: the same body."""
    if outcome.replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    elif created:
        response.status_code = 201
    return outcome
