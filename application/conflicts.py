"""What an idempotency conflict says: which field differs, never its value.

A command's id names one aggregate for good. A retry with the same request
is answered its first outcome; another request under the id is refused
with ``idempotency_conflict`` (409), and the refusal names what differs, as
TigerBeetle's ``exists_with_different_amount`` does: what holds the id when
it is not the same kind of movement ("an account", "a fee"), else the
request fields, in the API's words, whose recorded value differs. Stored
values are never echoed: whoever reuses an id may never have seen the
request that made it.
"""

from __future__ import annotations

import re
from uuid import UUID

from application.commands import REFERENCE_FIELDS, Command, Recorded
from domain.errors import IdempotencyConflict
from domain.movements import movement_noun
from domain.transfer import Transfer


def held_by_another_kind(
    holder: object, aggregate_id: UUID, id_field: str | None = None
) -> IdempotencyConflict:
    """The id is held by an aggregate of another kind than the command makes."""
    name = id_field or "id"
    return IdempotencyConflict(
        f"{name} {aggregate_id} is already used by {holder_noun(holder)}; use a new {name}"
    )


def different_request(command: Command, stored: Transfer) -> IdempotencyConflict:
    """The id was first used for another movement, or with other fields."""
    name, value = command.id_field or "id", command.command_id or stored.id
    asked = command.recorded()
    if asked is None:  # the command does not say how its Transfer records it
        return fields_differ(name, value, [])
    if asked.movement != holder_noun(stored):
        return IdempotencyConflict(
            f"{name} {value} was first used for {holder_noun(stored)}, not {asked.movement}; "
            f"use a new {name}"
        )
    return fields_differ(name, value,
                         differing_fields(asked, stored) + differing_references(command, stored))


def fields_differ(id_field: str, id_value: object, fields: list[str]) -> IdempotencyConflict:
    """The id was first used with other values of ``fields`` (the request's
    fields, in the API's words; none known: "a different request"). Every
    resource idempotent by an id answers a reused one in these words."""
    what = f"a different {_listed(fields)}" if fields else "a different request"
    return IdempotencyConflict(f"{id_field} {id_value} was first used with {what}; retry with "
                               f"the same request or use a new {id_field}")


def differing_fields(asked: Recorded, stored: Transfer) -> list[str]:
    """The request fields whose value the stored Transfer records otherwise.
    A field not given (None) was derived by the ledger, so it is not
    compared."""
    return [field for field, (attribute, value) in asked.fields.items()
            if value is not None and getattr(stored, attribute) != value]


def differing_references(command: Command, stored: Transfer) -> list[str]:
    """The caller's references (``metadata``, ``external_ref``) this request
    gives otherwise than the first. Compared given or not, as the
    fingerprint counts them: left out and empty are the same, and metadata
    is compared as a map, whatever its order."""
    return [name for name in REFERENCE_FIELDS if hasattr(command, name)
            and _reference(getattr(command, name)) != _reference(getattr(stored, name, None))]


def _reference(value: object) -> object:
    if not value:
        return None
    return value if isinstance(value, str) else dict(value)  # type: ignore[call-overload]


def holder_noun(aggregate: object) -> str:
    """What holds an id, in words: "an account", "a fee", "a price schedule"."""
    if isinstance(aggregate, Transfer):
        return movement_noun(aggregate.kind, hold=aggregate.is_hold,
                             by_spender=aggregate.spender is not None,
                             adjustment=aggregate.adjusts is not None)
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(aggregate).__name__).lower()
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _listed(fields: list[str]) -> str:
    quoted = [f"'{field}'" for field in fields]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
