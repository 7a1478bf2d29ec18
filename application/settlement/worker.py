"""Runs the settlement process in a background thread with its own asyncio
loop, while this process holds the settlement lease; reconciliation runs
there too, on its schedule and on request.

In the API process LedgerService starts one; ``deals-ledger settle`` runs
one on its own. Without the lease the worker stands by and tries again, so
a second settler takes over when the first goes away. The chain adapter is
opened once the lease is held (the embedded chain belongs to the process
that settles) and closed when it is given up.

Settlement steps and reconciliation take turns (one lock), so a run sees
the chain between two submissions, never in the middle of one of this
process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from eventsourcing.persistence import PersistenceError
from tenacity import AsyncRetrying, RetryCallState, stop_when_event_set, wait_exponential

from application.errors import SettlementUnavailable
from application.eventlog.decoder import EventDecoder
from application.settlement import metrics
from application.settlement.anchor_audit import AnchorAudit, run_anchor_audit
from application.settlement.anchor_witness import LeafWitness
from application.settlement.anchoring import AnchorConfig, AnchorHooks, AnchorProcess
from application.settlement.chain_lookup import ChainAheadOfLog
from application.settlement.chain_port import ChainError, ChainPort
from application.settlement.deposit_scan import DepositConfig, DepositScanner
from application.settlement.fold import SettlementFold
from application.settlement.lease import Lease
from application.settlement.process import (
    CommandSender,
    SettlementConfig,
    SettlementError,
    SettlementHooks,
    SettlementProcess,
)
from application.settlement.reconciler import (
    Reconciler,
    ReconciliationConfig,
    ReconciliationReport,
    latest_reconciliation,
)
from application.settlement.store import SETTLER_PAUSED
from domain.errors import LedgerError
from domain.system import DEPOSIT_FINDINGS_RUN_ID

logger = logging.getLogger(__name__)
T = TypeVar("T")

STANDBY_INTERVAL_S = 1.0
IDLE_INTERVAL_S = 1.0
ERROR_BACKOFF_S_MIN = 0.1
ERROR_BACKOFF_S_MAX = 10.0
RECONCILIATION_TIMEOUT_S = 3600.0


class SettlementWorker:
    def __init__(
        self,
        *,
        writer: CommandSender,
        fold: SettlementFold,
        lease: Callable[[], Lease],
        open_chain: Callable[[], ChainPort],
        chain_is_exclusive: bool,
        config: SettlementConfig | None = None,
        reconciliation: ReconciliationConfig | None = None,
        reconcile_interval_s: float = 0.0,
        deposits: DepositConfig | None = None,
        deposit_scan_interval_s: float = 0.0,
        idle_interval_s: float = IDLE_INTERVAL_S,
        standby_interval_s: float = STANDBY_INTERVAL_S,
        hooks: SettlementHooks | None = None,
        anchoring: AnchorConfig | None = None,
        anchor_hooks: AnchorHooks | None = None,
        witness: LeafWitness | None = None,
    ) -> None:
        self.writer = writer
        self.witness = witness
        """The anchored leaves kept outside the database (``anchor_witness``)."""
        self.anchoring = anchoring
        """None: this settler anchors nothing."""
        self.anchor_hooks = anchor_hooks
        self.fold = fold
        self.new_lease = lease
        """Makes a lease object; each holder needs its own (a flock or an
        advisory lock held twice by one object would not exclude itself)."""
        self.lease = lease()
        self.open_chain = open_chain
        self.chain_is_exclusive = chain_is_exclusive
        self.config = config or SettlementConfig()
        self.reconciliation = reconciliation or ReconciliationConfig()
        self.reconcile_interval_s = reconcile_interval_s
        self.deposits = deposits or DepositConfig()
        self.deposit_scan_interval_s = deposit_scan_interval_s
        """0: this settler scans no deposit address."""
        self.idle_interval_s = idle_interval_s
        self.standby_interval_s = standby_interval_s
        self.hooks = hooks
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._turn: asyncio.Lock | None = None
        self._chain: ChainPort | None = None
        self._process: SettlementProcess | None = None
        self._stopping = threading.Event()
        self._active = threading.Event()
        self._ready = threading.Event()
        self.standing_by = threading.Event()
        self._attempt_started = 0.0
        self._recorded_pause: bool | None = None
        """What the store was last told (None: nothing yet, by this worker)."""
        self.last_failure: str | None = None
        """What stopped the last settlement step or start here (its cause,
        never a secret); None once a step succeeds again (``/ready`` shows it)."""

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> SettlementWorker:
        if self._thread is None:
            self._stopping.clear()
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)
            self._thread.start()
            self._ready.wait(10)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop between or inside a step (cancelling a step is as safe as a
        crash: the log says what to do next) and give the lease up."""
        self._stopping.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.error("settlement thread did not stop within %.0fs", timeout_s)
            self._thread = None

    @property
    def active(self) -> bool:
        """This process holds the lease and its settler is working."""
        return self._active.is_set()

    @property
    def settling(self) -> bool:
        """Active and its last step (or start) did not fail: ``/ready``'s
        ``active_here`` (a settler retrying through an outage is not)."""
        return self.active and self.last_failure is None

    def _mark_paused(self, paused: bool) -> None:
        """Tell every process (through the store, under the lease) whether
        this settler is paused by failures; written on a change only."""
        if paused == self._recorded_pause:
            return
        try:
            self.fold.store.set_meta(SETTLER_PAUSED, int(paused))
            self._recorded_pause = paused
        except Exception as error:  # the store down too: /ready says so by its status
            logger.warning("could not record the settler's pause (%s)", _describe(error))

    @property
    def blockhash_wait(self) -> dict[str, int | None] | None:
        """The blockhash expiry this process's settler waits for before its
        lookup and first send (``/ready``), or None when it does not wait."""
        process = self._process
        wait = None if process is None else process.lookup.wait
        if wait is None or wait.passed:
            return None
        return {"until_block_height": wait.until_height, "block_height": wait.block_height}

    @property
    def chain(self) -> ChainPort | None:
        """The chain adapter the active settler uses (operator tools, tests)."""
        return self._chain

    def liveness(self) -> metrics.LivenessSource:
        """What ``/metrics`` reads about settlement when scraped: from the
        store, whichever process settles (``metrics.LIVENESS``)."""
        return StoreLiveness(self.new_lease(), self.fold)

    def wait_active(self, timeout_s: float) -> bool:
        return self._active.wait(timeout_s)

    def wake(self, *_: object) -> None:
        """Look at the log now (the writer's batch observer calls this)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    # --- reconciliation ------------------------------------------------------------

    def run_reconciliation(
        self, *, full: bool = False, timeout_s: float = RECONCILIATION_TIMEOUT_S,
        progress: Callable[[int], None] | None = None,
    ) -> ReconciliationReport:
        """One run now: on the settler's loop when it is active here, else on
        a chain of our own (for the embedded chain, only with the lease).
        ``progress``: told the accounts checked so far, after each page."""
        loop = self._loop
        if self.active and loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._reconcile(full, progress), loop)
            return future.result(timeout_s)
        return self._reconcile_standalone(full, progress)

    def audit_anchors(self, *, timeout_s: float = RECONCILIATION_TIMEOUT_S) -> AnchorAudit:
        """The stored log against every anchor on chain, on the chain this
        settler uses (as ``run_reconciliation`` reaches it)."""
        loop = self._loop
        if self.active and loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._audit_anchors_on_turn(), loop)
            return future.result(timeout_s)
        lease = self.new_lease() if self.chain_is_exclusive else None
        if lease is not None and not lease.try_acquire():
            raise SettlementUnavailable(
                "the embedded chain is held by the active settler of another process; "
                "audit the anchors there or with deals-ledger replay once it stops"
            )
        try:
            return asyncio.run(self._with_chain(self._anchor_audit))
        finally:
            if lease is not None:
                lease.release()

    async def _anchor_audit(self, chain: ChainPort) -> AnchorAudit:
        app = self.fold.app
        return await run_anchor_audit(app.event_log, EventDecoder(app.mapper), chain,
                                      self.witness)

    async def _audit_anchors_on_turn(self) -> AnchorAudit:
        assert self._turn is not None and self._chain is not None
        async with self._turn:
            return await self._anchor_audit(self._chain)

    def latest_reconciliation(self) -> ReconciliationReport | None:
        return latest_reconciliation(self.fold)

    def _reconcile_standalone(
        self, full: bool, progress: Callable[[int], None] | None = None
    ) -> ReconciliationReport:
        """Without an active settler here. The embedded chain may only be
        opened under the lease (its state lives in one process at a time), so
        a lease of its own is taken, which fails while any settler (this
        process's included, when it is between states) holds the lease."""
        lease = self.new_lease() if self.chain_is_exclusive else None
        if lease is not None and not lease.try_acquire():
            raise SettlementUnavailable(
                "the embedded chain is held by the active settler (of this or another "
                "process); run the reconciliation there (POST /v1/reconciliations) or retry"
            )
        try:
            return asyncio.run(self._with_chain(self._reconciler_run(full, progress)))
        finally:
            if lease is not None:
                lease.release()

    async def _with_chain(self, work: Callable[[ChainPort], Awaitable[T]]) -> T:
        chain = self.open_chain()
        try:
            return await work(chain)
        finally:
            await chain.close()

    def _reconciler_run(
        self, full: bool, progress: Callable[[int], None] | None = None
    ) -> Callable[[ChainPort], Awaitable[ReconciliationReport]]:
        async def run(chain: ChainPort) -> ReconciliationReport:
            reconciler = Reconciler(
                writer=self.writer, fold=self.fold, chain=chain, config=self.reconciliation,
                progress=progress,
            )
            return await reconciler.run(full=full)

        return run

    async def _reconcile(
        self, full: bool, progress: Callable[[int], None] | None = None
    ) -> ReconciliationReport:
        assert self._turn is not None and self._chain is not None
        async with self._turn:
            return await self._reconciler_run(full, progress)(self._chain)

    # --- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main_task())
        except Exception:
            logger.exception("settlement thread failed")
        finally:
            self._ready.set()

    async def _main_task(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._turn = asyncio.Lock()
        self._main = asyncio.current_task()
        self._ready.set()
        try:
            await self._lease_loop()
        except asyncio.CancelledError:
            pass
        finally:
            self._active.clear()
            self.lease.release()

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            if not self.lease.try_acquire():
                if not self.standing_by.is_set():
                    logger.warning("another settler holds the settlement lease; standing by")
                    self.standing_by.set()
                await self._idle(self.standby_interval_s)
                continue
            self.standing_by.clear()
            try:
                await self._settling_retried()
            except Exception as error:  # the stop came while settling kept failing
                _log_failure("settlement stopped", error, None)
                return

    async def _settling_retried(self) -> None:
        """Settle under the lease until stopped; the settler outlives any one
        failure: the lease is released (another settler may take over) and
        settling is tried again after 0.1 s, doubling up to ERROR_BACKOFF_S_MAX
        (tenacity). Only a stop cuts that wait short, not a new command: during
        an outage every command would otherwise retry at once (and the log's
        "next in" would not be the real wait)."""
        retryer = AsyncRetrying(
            wait=wait_exponential(multiplier=ERROR_BACKOFF_S_MIN, max=ERROR_BACKOFF_S_MAX),
            stop=stop_when_event_set(self._stopping), sleep=asyncio.sleep, reraise=True,
            before_sleep=self._paused,
        )
        await retryer(self._settle_under_lease)

    async def _settle_under_lease(self) -> None:
        if not self.lease.held and not self.lease.try_acquire():
            return  # another settler took the lease while this one paused
        self._attempt_started = time.monotonic()
        try:
            await self._settle()
        except Exception as error:
            self.last_failure = f"settlement paused: {_describe(error)}"
            self._mark_paused(True)
            self.lease.release()
            raise

    def _paused(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if isinstance(error, Exception):
            took_s = time.monotonic() - self._attempt_started  # the chain's own retries included
            _log_failure(f"settlement paused (attempt {state.attempt_number} failed after "
                         f"{took_s:.1f}s)", error, delay)

    async def _settle(self) -> None:
        self.fold.catch_up()  # the store alone: the backlog /ready shows holds during an outage
        chain = self.open_chain()
        try:
            process = SettlementProcess(
                writer=self.writer, fold=self.fold, chain=chain, config=self.config,
                hooks=self.hooks,
            )
            await process.prepare()
            self._chain, self._process = chain, process
            self._active.set()
            logger.info("settler active on %s", type(chain).__name__)
            await self._step_loop(process, self._anchorer(chain, process))
        finally:
            self._active.clear()
            self._chain = self._process = None
            await chain.close()

    def _anchorer(self, chain: ChainPort, process: SettlementProcess) -> AnchorProcess | None:
        if self.anchoring is None:
            return None
        return AnchorProcess(writer=self.writer, app=self.fold.app, chain=chain,
                             config=self.anchoring, hooks=self.anchor_hooks,
                             witness=self.witness, fee_payer=process.fee_payer)

    async def _step_loop(self, process: SettlementProcess, anchorer: AnchorProcess | None) -> None:
        """Step, anchor, reconcile when due; then wait: after a failed step the
        backoff (0.1 s doubling up to ERROR_BACKOFF_S_MAX), else nothing after
        progress, else the idle interval; a new command cuts either wait short
        (the chain answered a moment ago: this is no outage). Failures are
        logged once the wait is known, so the log says what it will be."""
        assert self._turn is not None
        due = self._next_reconciliation()
        scanner, deposits_due = self._deposit_scanner(process), 0.0
        backoff_s = 0.0
        while not self._stopping.is_set() and self.lease.held:
            failures: list[tuple[str, Exception]] = []
            progressed = False
            try:
                async with self._turn:
                    progressed = await process.step()
                backoff_s = 0.0
                self.last_failure = None
                self._mark_paused(False)
            except Exception as error:  # logged below; the step is tried again
                backoff_s = min(ERROR_BACKOFF_S_MAX, max(ERROR_BACKOFF_S_MIN, backoff_s * 2))
                failures.append(("settlement step failed", error))
                self.last_failure = f"settlement step failed: {_describe(error)}"
                self._mark_paused(True)
            if anchorer is not None:
                progressed = await self._anchor_step(anchorer, failures) or progressed
            if due is not None and time.monotonic() >= due:
                await self._scheduled_reconciliation()
                due = self._next_reconciliation()
            if scanner is not None and time.monotonic() >= deposits_due:
                await self._deposit_scan(scanner, failures)
                deposits_due = time.monotonic() + self.deposit_scan_interval_s
            await self._after_step(backoff_s, progressed, failures)

    async def _after_step(self, backoff_s: float, progressed: bool,
                          failures: list[tuple[str, Exception]]) -> None:
        wait_s = backoff_s or (0.0 if progressed else self.idle_interval_s)
        for what, error in failures:
            _log_failure(what, error, wait_s, or_sooner=wait_s > 0)
        if wait_s:
            await self._idle(wait_s)

    def _deposit_scanner(self, process: SettlementProcess) -> DepositScanner | None:
        if self.deposit_scan_interval_s <= 0:
            return None
        return DepositScanner(writer=self.writer, fold=self.fold, chain=process.chain,
                              config=self.deposits)

    async def _deposit_scan(self, scanner: DepositScanner,
                            failures: list[tuple[str, Exception]]) -> None:
        """One deposit scan, on the settler's turn; its failure is logged
        (with the step's) and never holds settlement up."""
        assert self._turn is not None
        try:
            async with self._turn:
                await scanner.scan()
        except Exception as error:
            failures.append(("deposit scan failed", error))

    async def _anchor_step(self, anchorer: AnchorProcess,
                           failures: list[tuple[str, Exception]]) -> bool:
        """One anchoring step, on the settler's turn; its failure is logged
        (with the step's) and never holds settlement up."""
        assert self._turn is not None
        try:
            async with self._turn:
                return await anchorer.step()
        except Exception as error:
            failures.append(("anchor step failed", error))
            return False

    def _next_reconciliation(self) -> float | None:
        if self.reconcile_interval_s <= 0:
            return None
        return time.monotonic() + self.reconcile_interval_s

    async def _scheduled_reconciliation(self) -> None:
        try:
            report = await self._reconcile(full=False)
            logger.info("scheduled reconciliation %s: %d findings",
                        report.reconciliation_id, report.findings_total)
        except Exception as error:
            _log_failure("scheduled reconciliation failed", error, self.reconcile_interval_s)

    async def _idle(self, timeout_s: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        self._wake.clear()


class StoreLiveness:
    """Settlement's state as the store tells it, for a scrape: the lease
    (probed, never taken), the settlement store's queue and position."""

    def __init__(self, lease: Lease, fold: SettlementFold) -> None:
        self.lease = lease
        self.fold = fold

    def settler_active(self) -> bool:
        """A settler holds the lease and is not paused: one that holds it
        only to try again during an outage would say "active" while nothing
        settles (the pause is in the store, so every process sees it)."""
        return self.lease.is_held_anywhere() and not self.fold.store.meta(SETTLER_PAUSED)

    def backlog(self) -> int:
        return self.fold.store.backlog()

    def lag_events(self) -> int:
        return max(0, self.fold.app.event_log.head() - self.fold.store.position())

    def unassigned_deposits_open(self) -> int:
        return self.fold.store.open_findings_count(DEPOSIT_FINDINGS_RUN_ID)


_EXPECTED = (ChainError, LedgerError, SettlementError, ChainAheadOfLog, PersistenceError, OSError)
"""Failures of the chain, the ledger or the stores, that a retry may cure;
anything else is a bug, logged with its traceback (and retried all the same)."""


def _log_failure(what: str, error: Exception, retry_in_s: float | None,
                 or_sooner: bool = False) -> None:
    """``retry_in_s``: the wait before the next attempt (None: none follows);
    ``or_sooner``: a new command cuts it short."""
    then = "" if retry_in_s is None else f"; next attempt in {retry_in_s:.1f}s"
    then += " or at the next command" if or_sooner else ""
    if isinstance(error, _EXPECTED):
        logger.warning("%s (%s)%s", what, _describe(error), then)
    else:
        logger.exception("%s with a bug%s", what, then)


def _describe(error: BaseException) -> str:
    if isinstance(error, LedgerError):
        return f"{error.code}: {error.message}"
    return f"{type(error).__name__}: {error}"

