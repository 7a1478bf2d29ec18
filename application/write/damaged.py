"""An aggregate whose stored events cannot be decoded (a damaged or
tampered row): the command that needs it is refused ``store_damaged``
(503, nothing applied) with an alert naming the aggregate and the first
version that does not decode, never a 500 that looks like a bug. The audit
(``deals-ledger replay``) names the row's log position."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from application.alerts import AlertKind, raise_alert
from application.errors import StoreDamaged

logger = logging.getLogger(__name__)


def damaged_aggregate(app: Any, aggregate_id: UUID, error: Exception) -> StoreDamaged:
    version = first_undecodable_version(app, aggregate_id)
    where = f"version {version}" if version is not None else "a snapshot or event"
    logger.error("aggregate %s: %s does not decode (%s)", aggregate_id, where,
                 type(error).__name__)
    raise_alert(AlertKind.STORE_DAMAGED, f"stored events of {aggregate_id} cannot be decoded",
                dedup_key=f"damaged-{aggregate_id}", aggregate_id=str(aggregate_id),
                version=version, error=type(error).__name__)
    refusal = StoreDamaged(f"the stored events of aggregate {aggregate_id} cannot be decoded "
                        f"({where}); nothing was applied: run the audit "
                        "(deals-ledger replay) to find the damaged row")
    refusal.aggregate_id = aggregate_id
    return refusal


def first_undecodable_position(app: Any, aggregate_id: Any, page: int = 1_000) -> int | None:
    """The log position of the aggregate's first row that cannot be read
    or applied: a scan of the whole log, so only for a start that cannot go
    on (never per command)."""
    after, mine = 0, list[Any]()
    while rows := app.recorder.select_notifications(after + 1, page):
        mine.extend(row for row in rows if row.originator_id == aggregate_id)
        after = rows[-1].id
    bad = _first_bad(app, mine)
    return None if bad is None else int(bad.id)


def first_undecodable_version(app: Any, aggregate_id: UUID) -> int | None:
    """The version of its first stored event the mapper cannot read, or
    that the aggregate cannot apply (a missing field fails only there)."""
    try:
        stored = app.recorder.select_events(aggregate_id)
    except Exception:  # naming it is a courtesy; the refusal stands without
        return None
    bad = _first_bad(app, stored)
    return None if bad is None else int(bad.originator_version)


def _first_bad(app: Any, stored: Any) -> Any:
    aggregate = None
    for event in stored:
        try:
            aggregate = app.mapper.to_domain_event(event).mutate(aggregate)
        except Exception:
            return event
    return None
