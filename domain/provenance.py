"""Who asked for each command, recorded on every event the command writes.

An auditor must be able to attribute a mint, a burn, a reversal, a freeze
or a price change to whoever asked for it, from the log alone: its events
are what the audit lists, what the history is built from and what the
proofs cover. So the command writer stamps two fields on each event a
command writes, in one place (``stamp``, called by the processor), and no
command class or aggregate needs to know (it is data the writer is given
with the command: here only because every layer reads it):

- ``requested_by``: the API key's *name* (never its token), or a system
  actor (``SYSTEM_ACTORS``) when the ledger asked itself;
- ``request_id``: the HTTP request's ``X-Request-ID`` (the client's, or the
  one the service made up for it); None for the ledger's own steps.

The fields are plain event attributes, stored in the event's state like
any other, so they are in the canonical bytes a proof covers. The domain
declares neither: events written before this change (the golden ledger)
have neither and read as before; a reader gets None for them (``of``).

A key's name cannot hold a colon (``DEALS_API_KEYS`` is ``name:token:...``),
so no key can pass for a system actor, whose names all hold one.

A repeated command writes nothing, so it records nothing: the events keep
the provenance of the first request that made them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REQUESTED_BY = "requested_by"
REQUEST_ID = "request_id"
FIELDS = (REQUESTED_BY, REQUEST_ID)

SYSTEM_GENESIS = "system:genesis"
"""The ledger's first commit (system accounts and price schedule)."""
SYSTEM_SETTLER = "system:settler"
"""The settlement worker: settlement steps, compensations (reversals of a
movement the chain refused), anchors and reconciliation runs."""
SYSTEM_SWEEPER = "system:sweeper"
"""The hold-expiry sweeper."""
SYSTEM_LEDGER = "system:ledger"
"""Any other step the ledger takes on its own."""
OPERATOR_CLI = "operator:cli"
"""An operator's command from the ``deals-ledger`` command line (which
holds no API key)."""
SYSTEM_ACTORS = (SYSTEM_GENESIS, SYSTEM_SETTLER, SYSTEM_SWEEPER, SYSTEM_LEDGER, OPERATOR_CLI)


@dataclass(frozen=True)
class Provenance:
    """Who asked for a command: what its events record."""

    requested_by: str
    request_id: str | None = None


def stamp(events: Iterable[Any], provenance: Provenance | None) -> None:
    """Record ``provenance`` on each of a command's new events, before they
    are stored. Events are frozen dataclasses whose stored state is their
    ``__dict__`` (the mapper), so the fields are set as the library's own
    decoding sets them."""
    if provenance is None:
        return
    for event in events:
        object.__setattr__(event, REQUESTED_BY, provenance.requested_by)
        object.__setattr__(event, REQUEST_ID, provenance.request_id)


def of(fields: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(requested_by, request_id)`` of a decoded event's fields; None for
    an event written before provenance was recorded."""
    requested_by, request_id = fields.get(REQUESTED_BY), fields.get(REQUEST_ID)
    return (requested_by if isinstance(requested_by, str) else None,
            request_id if isinstance(request_id, str) else None)
