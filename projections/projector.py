"""The projector: follows the event log and keeps the read models current.

It follows the log with the log's page loop (``application.eventlog``):
for each page after its tracking position it loads the rows the page
touches, folds the page into them, and commits the rows, the hash-chain
checkpoint and the new tracking position in one transaction.
A page ends where a commit ends (``application.eventlog.commits``), so the
read models only ever stand at a state that existed. Only after that commit
does it tell anyone: waiters on ``Progress`` (for consistent reads), the
Redis balance cache (write-through), the metrics.

A crash at any point leaves either the whole page or none of it; the next
start resumes from the tracking position, so every event is applied exactly
once. Several projectors may run (one per API process, plus ``deals-ledger
project`` workers): one holds the store's projection lock and works, the
others stand by and take over when it goes away.

In the API process the writer's batch observer wakes the projector right
after each commit; otherwise it polls the log (``poll_interval_s``), which
is also how writes of other processes are noticed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import Retrying, stop_when_event_set, wait_exponential

from application.eventlog.commits import CommitBoundaries
from application.eventlog.decoder import EventDecoder
from application.eventlog.page_loop import PageLoop
from application.eventlog.reader import EventLog, LogEvent
from application.eventlog.seal_check import sealed_pages
from projections import ledger_metrics as metrics
from projections.balance_cache import BalanceCache, CachedBalance
from projections.hashchain import HashChain
from projections.ledger_fold import (
    InvariantViolation,
    LedgerFold,
    PageChanges,
    keys_for,
    violation_position,
)
from projections.progress import Progress
from projections.read_model_store import ReadModelStore
from projections.restored_log import LostTimeline, lost_timeline

logger = logging.getLogger(__name__)

PROJECTOR_PAGE_EVENTS_DEFAULT = 1000
POLL_INTERVAL_S_DEFAULT = 0.1
PAGE_INTERVAL_S_DEFAULT = 0.05
"""While the log is busy (the last page found events and left less than a
page behind), the next page starts at most this long after the last one
started, and so holds every commit made meanwhile: a page's round trips
(the log's read, the seals, the head, the read-model transaction, the
cache's pipeline) cost the same for one commit as for twenty. A wake after
a quiet spell is served at once, a log a page or more behind is read at
once. Measured at 200 transfers/s (benchmarks/README.md, "The projector's
CPU"): the projector's CPU a transfer -26%, read-your-writes p50 +5-10 ms."""
STANDBY_RETRY_S = 1.0
ERROR_BACKOFF_S_MIN = 0.1
ERROR_BACKOFF_S_MAX = 5.0
HOLDS_GAUGE_REFRESH_S = 1.0
PROJECTION_NAME = "read_models"
REBUILD, STOP, REPORT = "rebuild", "stop", "report"


class LostTimelineFound(Exception):
    """The read models are of a timeline the log lost; not rebuilt."""


@dataclass
class PageReport:
    events: int
    position: int
    behind: int | None = None
    """Events between the log's head (read after the page) and the page's
    end; None when not asked or the head could not be read."""
    active: bool = True
    """Whether this projector held the lock (checking costs a round trip)."""


class Projector:
    def __init__(
        self,
        log: EventLog,
        decoder: EventDecoder,
        store: ReadModelStore,
        *,
        cache: BalanceCache | None = None,
        progress: Progress | None = None,
        page_events: int = PROJECTOR_PAGE_EVENTS_DEFAULT,
        poll_interval_s: float = POLL_INTERVAL_S_DEFAULT,
        page_interval_s: float = PAGE_INTERVAL_S_DEFAULT,
        name: str = PROJECTION_NAME,
        on_lost_timeline: str = REPORT,
    ) -> None:
        self.log = log
        self.decoder = decoder
        self.store = store
        self.cache = cache
        self.progress = progress or Progress()
        self.page_events = page_events
        self.poll_interval_s = poll_interval_s
        self.page_interval_s = page_interval_s
        self.name = name
        self.on_lost_timeline = on_lost_timeline
        """Read models of a timeline the log lost: ``REBUILD`` from the log;
        ``STOP`` there (a log truncated or altered on purpose looks the same,
        so the operator, who knows of the restore, allows the rebuild);
        ``REPORT`` in the log only (an audit's own projector)."""
        self.lock = store.projection_lock()
        self.before_commit: Callable[[], None] | None = None  # fault injection in tests
        self.after_commit: Callable[[], None] | None = None  # fault injection in tests
        self.on_refused: Callable[[int | None, str], None] | None = None
        """Told (position, what) when a page cannot be applied: the wiring
        raises an alert. The projector stops there; it never skips an event."""
        self.stalled_at: int | None = None
        """The position it stopped at (refused, never skipped): /ready is not
        ready while it is set; a page applied clears it."""
        self._pages = PageLoop(log, self, sealed_pages(
            log, CommitBoundaries(log, decoder).page, self._refused_unsealed))
        self._chain: HashChain | None = None  # loaded with the tracked position
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._work_lock = threading.Lock()
        self._last_event_time: float | None = None
        self._holds_dirty = True
        self._holds_refreshed_at = 0.0
        self._behind: int | None = None

    def _refused_unsealed(self, position: int, why: str) -> None:
        self._stalled(position)
        if self.on_refused is not None:
            self.on_refused(position, f"no valid commit seal: {why}")

    def _stalled(self, position: int) -> None:
        """Remember where it stopped, and say how far behind that leaves the
        read models (the lag gauge is otherwise set only after a page)."""
        self.stalled_at = position
        self._update_lag(self.progress.position)

    # Lifecycle

    def start(self) -> Projector:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"projector-{self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        with self._work_lock:
            self.lock.release()
            self._forget()

    def wake(self, *_: object) -> None:
        """Look at the log now (e.g. right after the writer committed)."""
        self._wake.set()

    @property
    def active(self) -> bool:
        return self.lock.held

    # Work

    def run_once(self) -> PageReport:
        """Apply at most one page, if this projector holds the lock."""
        with self._work_lock:
            if not self.lock.try_acquire():
                return PageReport(0, self.progress.position, active=False)
            try:
                with self.log.session():
                    return self._apply_next_page()
            except BaseException:
                self._forget()
                raise

    def catch_up(
        self, upto: int | None = None, *, progress_line: Callable[[int], None] | None = None
    ) -> int:
        """Apply pages until the log (as it was at the start, or ``upto``)
        is applied; returns the number of events applied."""
        target = self.log.head() if upto is None else upto
        applied = 0
        while True:
            report = self.run_once()
            applied += report.events
            if progress_line is not None:
                progress_line(report.position)
            if report.events == 0 or report.position >= target:
                return applied
            if not report.active:
                return applied

    def rebuild(self, *, progress_line: Callable[[int], None] | None = None) -> int:
        """Empty the read models and apply the whole log again."""
        with self._work_lock:
            if not self.lock.try_acquire():
                raise RuntimeError("another projector holds the lock; stop it to rebuild")
            self.store.reset()
            self._forget()
            self.progress.reset(0)
            self.stalled_at = None
        if self.cache is not None:
            self.cache.resync_from(self.store, 0)
        return self.catch_up(progress_line=progress_line)

    def _forget(self) -> None:
        """Drop in-memory state; it is loaded again from the store."""
        self._pages.forget()
        self._chain = None

    def _apply_next_page(self) -> PageReport:
        events = self._pages.apply_next(self.page_events)
        if events:
            return PageReport(len(events), events[-1].position, self._behind)
        position = self._pages.position()
        if self.cache is not None and self.cache.needs_resync:
            self.cache.heal(self.store)  # Redis may be back while the log is quiet
        self._update_lag(position)
        self._refresh_holds_gauge(idle=True)
        return PageReport(0, position)

    # The page loop's consumer

    def tracked_position(self) -> int:
        """Where the store stands, with the hash chain's head there (read
        models of a timeline the log lost are rebuilt first)."""
        self._rebuild_if_timeline_lost()
        position = self.store.position()
        self._chain = HashChain(*self.store.chain_head())
        self.progress.advance(position)
        if self.cache is not None:
            self.cache.heal(self.store)
        return position

    def _rebuild_if_timeline_lost(self) -> None:
        """Read models past the log's head, or folded from events the log no
        longer holds, are emptied (with the lost timeline's checkpoints, its
        head logged) and projected again from the log, when allowed: they
        are derived, the log is the ledger. Until caught up, /ready answers
        503 (behind)."""
        lost = lost_timeline(self.store, self.log)
        if lost is None:
            return
        if self.on_lost_timeline != REBUILD:
            logger.error("%s: not rebuilt by itself, since a log truncated or altered on purpose "
                         "looks the same; after a restore, start with "
                         "DEALS_REBUILD_RESTORED_READ_MODELS=on (docs/operations.md, Backups)",
                         lost.why)
            if self.on_lost_timeline == STOP:
                self._stop_at_lost_timeline(lost)
            return
        ended = "" if lost.lost_head is None else (
            f"; the lost timeline's hash chain ended at position {lost.lost_head[0]} with head "
            f"{lost.lost_head[1].hex()}")
        logger.warning("%s: rebuilding the read models from the event log (hash checkpoints "
                       "past position %d dropped%s)", lost.why, lost.kept_upto, ended)
        metrics.READ_MODELS_REBUILT.labels(self.name).inc()
        self.store.reset(checkpoints_after=lost.kept_upto)
        self.progress.reset(0)
        self.stalled_at = None
        if self.cache is not None:
            self.cache.resync_from(self.store, 0)

    def _stop_at_lost_timeline(self, lost: LostTimeline) -> None:
        """Fold nothing onto another timeline (it would also hide it: the
        next checkpoints would extend the lost chain)."""
        position = min(self.store.position(), lost.kept_upto + 1)
        if self.store.position() <= self.log.head():  # past the head, /ready names it already
            self._stalled(position)
            if self.on_refused is not None:
                self.on_refused(position, lost.why)
        raise LostTimelineFound(lost.why)

    def apply_page(self, previous: int, events: list[LogEvent]) -> None:
        """Load, fold, write and read back the cache's entries in one
        transaction (``ReadModelStore.page_transaction``); tell anyone only
        after it committed."""
        assert self._chain is not None, "the chain is loaded with the tracked position"
        with self.store.page_transaction() as cursor:
            changes = self._fold(events, cursor)
            checkpoint = self._chain.extend(events)
            started = time.perf_counter()
            self.store.write_page(previous, changes, checkpoint, self.before_commit,
                                  cursor=cursor)
            entries = (self.store.cache_entries(
                [row.account_id for row in changes.balances.values()], cursor)
                       if self.cache is not None and changes.balances else [])
        metrics.PAGE_COMMIT_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        self._chain.advance(checkpoint)
        if self.after_commit is not None:
            self.after_commit()
        self.progress.advance(changes.last_position)
        self.stalled_at = None
        self._after_page(events, changes, entries)

    def _fold(self, events: list[LogEvent], cursor: object) -> PageChanges:
        state = self.store.load(keys_for(events), cursor)
        changes = LedgerFold(state, self.decoder).apply(events)
        if changes.violations:
            for violation in changes.violations[:20]:
                logger.error("read model invariant broken: %s", violation)
            metrics.INVARIANT_VIOLATIONS.labels(self.name).inc(len(changes.violations))
            self._stalled(violation_position(changes.violations[0]) or events[0].position)
            if self.on_refused is not None:
                self.on_refused(violation_position(changes.violations[0]), changes.violations[0])
            raise InvariantViolation(
                f"{len(changes.violations)} invariant violation(s) in the page after position "
                f"{events[0].position - 1}; first: {changes.violations[0]}"
            )
        return changes

    def _after_page(self, events: list[LogEvent], changes: PageChanges,
                    entries: list[CachedBalance]) -> None:
        metrics.EVENTS_APPENDED.inc(len(events))
        metrics.EVENTS_PROJECTED.labels(self.name).inc(len(events))
        if changes.last_time is not None:
            self._last_event_time = changes.last_time / 1e6
        if self.cache is not None and changes.balances:
            since = events[0].position - 1  # every account changed in the page is past it
            self.cache.write_through(self.store, entries, since, changes.last_position)
        self._holds_dirty = self._holds_dirty or bool(changes.holds)
        self._behind = self._update_lag(changes.last_position)
        self._refresh_holds_gauge(idle=self._behind == 0)

    def _refresh_holds_gauge(self, *, idle: bool) -> None:
        """At most once a second under load; at once when the log is quiet."""
        now = time.monotonic()
        if self._holds_dirty and (idle or now - self._holds_refreshed_at >= HOLDS_GAUGE_REFRESH_S):
            self._holds_dirty = False
            self._holds_refreshed_at = now
            metrics.set_holds_outstanding(*self.store.holds_outstanding())

    def _update_lag(self, position: int) -> int | None:
        """Set the lag gauges; returns how many events the log's head is
        past ``position`` (None when the head could not be read)."""
        try:
            head = self.log.head()
        except Exception:  # the lag is a gauge; the next page sets it
            return None
        behind = max(0, head - position)
        metrics.PROJECTION_LAG_EVENTS.labels(self.name).set(behind)
        seconds = 0.0
        if behind and self._last_event_time is not None:
            seconds = max(0.0, time.time() - self._last_event_time)
        metrics.PROJECTION_LAG_SECONDS.labels(self.name).set(seconds)
        return behind

    def _retrying(self, attempt: Callable[[], PageReport]) -> PageReport:
        """``attempt()`` until it succeeds or the projector stops (tenacity):
        waits of 0.1 s doubling up to ERROR_BACKOFF_S_MAX, cut short by a stop;
        a success starts the next failure's waits from 0.1 s again."""
        retryer = Retrying(
            wait=wait_exponential(multiplier=ERROR_BACKOFF_S_MIN, max=ERROR_BACKOFF_S_MAX),
            stop=stop_when_event_set(self._stopping), sleep=self._pause, reraise=True,
            before_sleep=lambda state: self._failed(
                state.outcome.exception() if state.outcome is not None else None),
        )
        return retryer(attempt)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _failed(self, error: BaseException | None) -> None:
        logger.error("projector %s failed; retrying", self.name, exc_info=error)
        metrics.PROJECTION_ERRORS.labels(self.name).inc()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # a wake from now on is kept for the wait below
            started = time.monotonic()
            try:
                report = self._retrying(self.run_once)
            except Exception as error:  # the stop came while it kept failing
                self._failed(error)
                return
            if not report.active:
                self._stopping.wait(STANDBY_RETRY_S)
                continue
            self._next(report, started)

    def _next(self, report: PageReport, started: float) -> None:
        """Wait, if at all, before the next page: none while catching up (a
        page's worth or more behind); for the writer's wake or the poll at
        the head; while the log is busy, until ``page_interval_s`` after
        the last page started, so that the next one holds every commit made
        meanwhile. A wake kept from during the page ends the wait at once."""
        if not report.events:
            self._wake.wait(self.poll_interval_s)  # quiet: the next commit is served at once
            return
        if report.behind is None or report.behind >= self.page_events:
            return
        if report.behind == 0 and not self._wake.wait(self.poll_interval_s):
            return
        self._stopping.wait(max(0.0, started + self.page_interval_s - time.monotonic()))
