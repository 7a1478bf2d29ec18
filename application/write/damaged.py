"""An aggregate whose stored events cannot be decoded (a damaged or
tampered row): the command that needs it is refused ``store_damaged``
(503, nothing applied) with an alert naming the aggregate and the first
version that does not decode (application.eventlog.damaged_rows), never a
500 that looks like a bug. The audit (``deals-ledger replay``) names the
row's log position."""

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
