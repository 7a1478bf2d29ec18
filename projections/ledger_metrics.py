"""Prometheus metrics of the ledger (prometheus-client).

No label names a user, an account or a transfer: label values come from
small fixed sets (command kinds, error codes, projection names).

Several processes (API workers, ``deals-ledger project`` workers): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by all of them
before they start (and empty it at deploy); every process then writes its
values there and ``exposition()`` merges them. Gauges use ``livemax``: the
value of the live process that reports the largest, which for the
projection gauges is the active projector (standbys report 0).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from domain.amounts import UNITS_PER_DEAL
from domain.errors import LedgerError

_LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

TRANSACTIONS = Counter(
    "token_transactions", "Commands sent by API clients and operators, answered, by command "
    "type and outcome (status is ok or the error code)", ["type", "status"],
)
INTERNAL_STEPS = Counter(
    "deals_ledger_internal_steps", "Commands the ledger sends itself (genesis, hold expiry, "
    "settlement and reconciliation steps, anchors), by type and outcome", ["type", "status"],
)
INTERNAL_KINDS = frozenset({
    "genesis", "expire_hold", "record_submission", "mark_settled", "mark_settlement_rejected",
    "mark_settlement_failed", "record_genesis_settlement", "record_anchor", "resign_anchor",
    "confirm_anchor", "start_reconciliation", "record_findings", "finish_reconciliation",
    "retry_compensation", "credit_deposit",
})
"""Command kinds only the ledger itself sends; every other kind is a user
command (tests/projections/test_metrics.py checks that each kind is one or
the other, so a new command is classified on purpose)."""
TRANSACTION_DURATION = Histogram(
    "token_transaction_duration_seconds",
    "Command latency from being sent to the writer to its answer (its wait plus its batch)", ["type"],
    buckets=_LATENCY_BUCKETS_S,
)
EVENTS_APPENDED = Counter(
    "ledger_events_appended", "Events appended to the log (counted as the projector reads them)"
)
EVENTS_PROJECTED = Counter(
    "projection_events", "Events applied to the read models", ["projection"]
)
PROJECTION_LAG_EVENTS = Gauge(
    "projection_lag_events", "Events in the log not yet applied", ["projection"],
    multiprocess_mode="livemax",
)
PROJECTION_LAG_SECONDS = Gauge(
    "projection_lag_seconds",
    "Age of the newest applied event while the projection is behind (0 when caught up)",
    ["projection"], multiprocess_mode="livemax",
)
PROJECTION_ERRORS = Counter(
    "projection_errors", "Pages that failed to apply (retried)", ["projection"]
)
READ_MODELS_REBUILT = Counter(
    "deals_ledger_read_models_rebuilt",
    "Times the projector found its read models of a timeline the event log lost (the log "
    "restored without them) and rebuilt them from the log", ["projection"],
)
INVARIANT_VIOLATIONS = Counter(
    "read_model_invariant_violations", "Ledger rules found broken while projecting",
    ["projection"],
)
PAGE_COMMIT_SECONDS = Histogram(
    "projection_page_commit_seconds", "Time to commit one page of read-model changes",
    ["projection"], buckets=_LATENCY_BUCKETS_S,
)
CACHE_HITS = Counter("balance_cache_hits", "Balance reads answered from Redis")
CACHE_MISSES = Counter("balance_cache_misses", "Balance reads Redis had no entry for")
CACHE_ERRORS = Counter(
    "balance_cache_errors", "Redis failures (down, timeout), by read or write", ["operation"]
)
CACHE_BYPASSED = Counter(
    "balance_cache_bypassed", "Balance reads that skipped Redis during a cool-down after a failure"
)
HOLDS_OUTSTANDING = Gauge("holds_outstanding", "Pending holds", multiprocess_mode="livemax")
HOLDS_OUTSTANDING_DEAL = Gauge("holds_outstanding_deal", "Amount held by pending holds, in DEAL",
                               multiprocess_mode="livemax")


def observe_batch(report: Any) -> None:
    """The command writer's batch observer (``application.write.writer.BatchReport``)."""
    for command, result, waited_s in zip(report.commands, report.results, report.waited_s,
                                         strict=True):
        status = result.code if isinstance(result, LedgerError) else "ok"
        if command.kind in INTERNAL_KINDS:
            INTERNAL_STEPS.labels(command.kind, status).inc()
            continue
        TRANSACTIONS.labels(command.kind, status).inc()
        TRANSACTION_DURATION.labels(command.kind).observe(waited_s + report.duration_s)


def set_holds_outstanding(count: int, amount: int) -> None:
    HOLDS_OUTSTANDING.set(count)
    HOLDS_OUTSTANDING_DEAL.set(amount / UNITS_PER_DEAL)


def exposition(*live: Collector) -> tuple[bytes, str]:
    """The Prometheus text for ``GET /metrics`` and its content type.

    ``live`` collectors compute their values when scraped (from the store,
    not from any process's memory) and are exposed as they are, also in
    multiprocess mode; their names must not be those of any other metric.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scraped = CollectorRegistry(auto_describe=False)  # nothing is read at registration
    for collector in live:
        scraped.register(collector)
    return text + generate_latest(scraped), CONTENT_TYPE_LATEST
