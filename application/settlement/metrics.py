"""Prometheus metrics of settlement and reconciliation, in one small module.

Registered through ``application.metrics_registry`` (once per process,
whichever module asks). No label names an account or a transfer.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from application.metrics_registry import metric as _metric

_LIVE: dict[str, Any] = {"multiprocess_mode": "livemax"}


SETTLEMENT_BACKLOG = _metric(
    Gauge, "settlement_backlog", "Movements waiting for the chain or in flight", **_LIVE
)
SETTLEMENT_SUBMISSIONS = _metric(
    Counter, "settlement_submissions",
    "Settlement submissions by outcome (settled, failed, rejected, expired)",
    labels=("outcome",),
)
SETTLED_MOVEMENTS = _metric(Counter, "settlement_movements_settled", "Movements settled on chain")
FAILED_MOVEMENTS = _metric(
    Counter, "settlement_movements_failed", "Movements the chain refused (compensated)"
)
BLOCKED_COMPENSATIONS = _metric(
    Counter, "settlement_compensations_blocked",
    "Failed movements whose compensating reversal the ledger refused",
)
CHAIN_RETRIES = _metric(
    Counter, "settlement_chain_retries", "Chain calls retried after an RPC error or timeout",
    labels=("operation",),
)
SETTLER_ACTIVE = _metric(
    Gauge, "settlement_settler_active", "1 while this process holds the settlement lease", **_LIVE
)
RECONCILIATION_MISMATCHES = _metric(
    Gauge, "reconciliation_mismatches", "Mismatches found by the latest reconciliation", **_LIVE
)
RECONCILIATION_UNMATCHED = _metric(
    Gauge, "reconciliation_unmatched_signatures",
    "On-chain signatures the latest reconciliation could not match to the log", **_LIVE,
)
RECONCILIATION_CHECKED_ACCOUNTS = _metric(
    Gauge, "reconciliation_checked_accounts", "Accounts checked by the latest reconciliation",
    **_LIVE,
)
RECONCILIATION_FINDINGS = _metric(
    Counter, "reconciliation_findings", "Findings recorded, by kind", labels=("kind",)
)
RECONCILIATION_FINISHED = _metric(
    Gauge, "reconciliation_last_finished_timestamp_seconds",
    "When the latest reconciliation finished (Unix time)", **_LIVE,
)
