"""``ReadSide``: the read models, their projector, the Redis cache and the
queries of one process, built beside an eventsourcing application.

The composition root (``interface.wiring.service.LedgerService``) builds one with
the application it runs, starts it after the writer, registers
``on_batch`` as the writer's observer (metrics, and a prompt wake-up of the
projector after each commit) and hands ``queries`` to the HTTP API. The
``deals-ledger project`` and ``replay`` commands build one without a writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from eventsourcing.application import Application

from application.eventlog.decoder import EventDecoder
from application.eventlog.opening import event_log_for
from projections import ledger_metrics as metrics
from projections.balance_cache import BalanceCache
from projections.event_stream import EventStream
from projections.progress import Progress, ProgressFollower
from projections.projector import (
    POLL_INTERVAL_S_DEFAULT,
    PROJECTOR_PAGE_EVENTS_DEFAULT,
    REBUILD,
    REPORT,
    STOP,
    Projector,
)
from projections.queries import MIN_POSITION_WAIT_S
from projections.read_model_store import open_store
from projections.read_models import ReadModelQueries, utc_now


def lost_timeline_policy(rebuild_allowed: bool) -> str:
    """A serving projector rebuilds read models of a lost timeline when the
    operator allows it, else stops there."""
    return REBUILD if rebuild_allowed else STOP


class ReadSide:
    def __init__(
        self,
        app: Application[Any],
        env: Mapping[str, str],
        *,
        redis_url: str | None = None,
        redis_prefix: str = "",
        page_events: int = PROJECTOR_PAGE_EVENTS_DEFAULT,
        poll_interval_s: float = POLL_INTERVAL_S_DEFAULT,
        clock: Callable[[], datetime] = utc_now,
        wait_s_max: float | None = None,
        on_lost_timeline: str = REPORT,
    ) -> None:
        self.store = open_store(env)
        self.log = event_log_for(app.recorder)
        self.decoder = EventDecoder(app.mapper)
        self._genesis: str | None = None
        self.cache = BalanceCache(redis_url, prefix=redis_prefix,
                                  genesis=self.genesis) if redis_url else None
        self.progress = Progress()
        self.projector = Projector(
            self.log, self.decoder, self.store, cache=self.cache, progress=self.progress,
            page_events=page_events, poll_interval_s=poll_interval_s,
            on_lost_timeline=on_lost_timeline,
        )
        self.queries = ReadModelQueries(
            self.store, self.log, self.decoder, cache=self.cache, progress=self.progress,
            clock=clock, wait_s_max=MIN_POSITION_WAIT_S if wait_s_max is None else wait_s_max,
        )
        self.events = EventStream(self.log, self.decoder)
        self.follower = ProgressFollower(self.progress, self._tracked_elsewhere)

    def genesis(self) -> str | None:
        """This ledger's identity: a digest of its first stored event, which
        a re-created ledger does not share (its genesis has another time).
        None while the log is empty."""
        if self._genesis is None:
            first = self.log.read(0, 1)
            if first:
                digest = hashlib.sha256(first[0].originator_id.encode() + first[0].state)
                self._genesis = digest.hexdigest()[:32]
        return self._genesis

    def _tracked_elsewhere(self) -> int:
        """The store's tracking position, read for waiting requests while no
        projector of this process is active (one in this process advances
        ``progress`` itself)."""
        if self.projector.active:
            return self.progress.position
        return self.store.position()

    def start(self) -> ReadSide:
        """Run the projector in a background thread (standby if another
        process's projector holds the lock)."""
        self.projector.start()
        return self

    def follow(self) -> ReadSide:
        """Keep ``progress`` current for waiting requests when the projector
        may run elsewhere (every API process starts this)."""
        self.follower.start()
        return self

    def stop(self) -> None:
        self.follower.stop()
        self.projector.stop()

    def close(self) -> None:
        self.stop()
        if self.cache is not None:
            self.cache.close()
        self.store.close()

    def on_batch(self, report: Any) -> None:
        """The command writer's observer: metrics, then wake the projector."""
        metrics.observe_batch(report)
        self.projector.wake()
