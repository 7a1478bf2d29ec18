"""Prometheus metrics of settlement and reconciliation, in one small module.

Registered through ``application.metrics_registry`` (once per process,
whichever module asks). No label names an account or a transfer.

Whether a settler is alive, and how much waits for one, are not gauges a
settler sets: a settler killed with SIGKILL never sets them back, and with a
shared ``PROMETHEUS_MULTIPROC_DIR`` its last values stayed on ``/metrics``
(``settlement_settler_active 1`` and a frozen backlog). ``LIVENESS`` computes
them when scraped, from the store: the lease (held by a live settler only,
the OS or PostgreSQL drop it with its holder), the settlement store's queue,
and how far the settlement fold is behind the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from application.metrics_registry import metric as _metric

logger = logging.getLogger(__name__)

_LIVE: dict[str, Any] = {"multiprocess_mode": "livemax"}


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
FOUND_ON_CHAIN = _metric(
    Counter, "deals_ledger_settlement_movements_found_on_chain",
    "Movements the log still had waiting, found landed on chain (after a restore or a "
    "failover) and recorded as settled instead of being sent again",
)
LANDED_DISAGREES = _metric(
    Counter, "deals_ledger_settlement_landed_disagreements",
    "Movements the log had waiting under ids a landed transaction of the ledger names, "
    "which moved other amounts: sent as new movements, not recorded settled by it",
)
SETTLEMENT_GAPS = _metric(
    Counter, "deals_ledger_settlement_store_gaps",
    "Times the settlement store went back, or was folded again from the log, under a running "
    "settler (a restore or a failover)",
)
STORE_REBUILT = _metric(
    Counter, "deals_ledger_settlement_store_rebuilt",
    "Times the settlement store was found folded from a timeline the event log lost (the "
    "log restored without it) and folded again from the log",
)
BLOCKHASH_WAIT_HEIGHT = _metric(
    Gauge, "deals_ledger_settlement_blockhash_wait_height",
    "Block height the chain must pass before the settler sends anything (every blockhash "
    "handed out before its start or gap expired); 0 when it does not wait", **_LIVE,
)
BLOCKHASH_WAITS = _metric(
    Counter, "deals_ledger_settlement_blockhash_waits",
    "Times a settler waited for every earlier blockhash to expire before its lookup and "
    "first send (a start, or a gap in the settlement store)",
)
CHAIN_RETRIES = _metric(
    Counter, "settlement_chain_retries", "Chain calls retried after an RPC error or timeout",
    labels=("operation",),
)
ANCHORS = _metric(
    Counter, "deals_ledger_anchors", "Anchor steps of the log's Merkle root on chain (confirmed, resigned)",
    labels=("outcome",),
)
FEE_PAYER_LAMPORTS = _metric(
    Gauge, "deals_ledger_fee_payer_lamports",
    "The fee payer's SOL balance in lamports, as the settler last read it", **_LIVE,
)
FEE_PAYER_NEEDED_LAMPORTS = _metric(
    Gauge, "deals_ledger_fee_payer_needed_lamports",
    "Lamports the fee payer must hold for one more transaction (its rent-exempt minimum, "
    "fees, rent of the token accounts it creates); below it settlement pauses", **_LIVE,
)
DEPOSITS_CREDITED = _metric(
    Counter, "deals_ledger_deposits_credited",
    "Deposits from a connected wallet the deposit scan credited",
)
DEPOSITS_UNASSIGNED = _metric(
    Counter, "deals_ledger_deposits_unassigned",
    "Deposits the deposit scan did not credit and recorded as unassigned_deposit findings",
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


class LivenessSource(Protocol):
    """Where ``LIVENESS`` reads a ledger's settlement state from (its store)."""

    def settler_active(self) -> bool:
        """Some process holds the settlement lease now and is not paused."""
        ...

    def backlog(self) -> int:
        """Movements queued or in flight, as far as the settlement fold has read."""
        ...

    def lag_events(self) -> int:
        """Log positions the settlement fold has not read yet."""
        ...

    def unassigned_deposits_open(self) -> int:
        """Unassigned deposit findings neither assigned nor returned."""
        ...


_LIVENESS_METRICS: tuple[tuple[str, str, str], ...] = (
    ("settlement_settler_active", "settler_active",
     "1 while a live settler (of any process) holds the settlement lease and settles (0 while "
     "a chain outage pauses it), read when scraped"),
    ("settlement_backlog", "backlog",
     "Movements waiting for the chain or in flight, read from the store when scraped"),
    ("deals_ledger_settlement_lag_events", "lag_events",
     "Log positions the settlement fold has not read (grows while no settler runs)"),
    ("deals_ledger_deposits_unassigned_open", "unassigned_deposits_open",
     "Unassigned deposit findings open (neither assigned nor returned, or reopened by a "
     "return the chain refused), read from the store when scraped"),
)


class SettlementLiveness:
    """A collector whose values are read from the store at each scrape.

    ``watch`` names the ledger to read (the last started service of the
    process); a value that cannot be read (the store down) is left out of
    that scrape rather than reported as a number that may be false.
    """

    def __init__(self) -> None:
        self._source: LivenessSource | None = None
        self._lock = threading.Lock()

    def watch(self, source: LivenessSource) -> None:
        with self._lock:
            self._source = source

    def forget(self, source: LivenessSource) -> None:
        with self._lock:
            if self._source is source:
                self._source = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self._source
        if source is None:
            return
        for name, reading, documentation in _LIVENESS_METRICS:
            try:
                value = float(getattr(source, reading)())
            except Exception as error:  # the store down: no value beats a false one
                logger.debug("%s not read: %s", name, type(error).__name__)
                continue
            yield GaugeMetricFamily(name, documentation, value=value)


LIVENESS = SettlementLiveness()
"""Not in the default registry: ``GET /metrics`` adds it to every exposition
(in multiprocess mode too, where the default registry is not exposed)."""
