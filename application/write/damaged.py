"""An aggregate whose stored events cannot be decoded (a damaged or
tampered row): the command that needs it is refused ``store_damaged``
(503, nothing applied) with an alert naming the row's log position (where
the audit, ``deals-ledger replay``, reports it too), the aggregate and the
first version that does not decode (application.eventlog.damaged_rows),
never a 500 that looks like a bug."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from application.alerts import AlertKind, raise_alert
from application.errors import StoreDamaged
from application.eventlog.damaged_rows import first_undecodable_version

logger = logging.getLogger(__name__)


def damaged_aggregate(app: Any, aggregate_id: UUID, error: Exception) -> StoreDamaged:
    version = first_undecodable_version(app, aggregate_id)
    position = _position_of(app, aggregate_id, version)
    where = _where(position, version)
    logger.error("aggregate %s: %s does not decode (%s)", aggregate_id, where,
                 type(error).__name__)
    raise_alert(AlertKind.STORE_DAMAGED,
                f"the event at {where} (aggregate {aggregate_id}) cannot be decoded",
                dedup_key=f"damaged-{aggregate_id}", aggregate_id=str(aggregate_id),
                position=position, version=version, error=type(error).__name__)
    refusal = StoreDamaged(f"the stored event at {where} of aggregate {aggregate_id} cannot be "
                           "decoded; nothing was applied: run the audit (deals-ledger replay), "
                           "which lists every damaged row by position")
    refusal.aggregate_id = aggregate_id
    refusal.position = position
    return refusal


def _position_of(app: Any, aggregate_id: UUID, version: int | None) -> int | None:
    """The damaged row's log position, one indexed lookup; None when it
    cannot be told (naming it is a courtesy; the refusal stands without)."""
    if version is None:
        return None
    try:
        return app.event_log.position_of(aggregate_id, version)
    except Exception:
        return None


def _where(position: int | None, version: int | None) -> str:
    if position is not None:
        return f"position {position} (version {version})"
    return f"version {version}" if version is not None else "a snapshot or event"
