"""A watchdog for the two conditions nobody may be asking about: the event
store unreachable and the read models no longer following the log.

Commands and /ready notice a dead store only when someone calls; a stalled
projector (stuck, crashed, its worker process gone) is noticed by nobody
until a client's read-your-writes wait times out. This thread looks every
``interval_s``: the store's last position (an error: ``store_unreachable``),
and the read models' position, which must advance while it is behind the
log (behind and unchanged for ``stall_after_s``: ``projection_stalled``).

It reads positions through two callables, so it knows nothing of stores or
read models, and it raises alerts (application/alerts.py); it changes
nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from application.alerts import STORE_ALERT_KEY, AlertKind, Alerts
from application.ops.background import periodic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchPolicy:
    interval_s: float = 5.0
    stall_after_s: float = 60.0


class HealthWatch:
    def __init__(
        self,
        store_position: Callable[[], int],
        read_position: Callable[[], int | None],
        alerts: Alerts,
        policy: WatchPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store_position = store_position
        self._read_position = read_position
        self._alerts = alerts
        self.policy = policy or WatchPolicy()
        self._monotonic = monotonic
        self._last_read: int | None = None
        self._last_advance = monotonic()
        self._stalled_alerted = False
        self.checks_done = 0
        self._background = periodic("health-watch", self.policy.interval_s, self.check,
                                    failure="health watch check failed", log=logger)

    def start(self) -> HealthWatch:
        self._background.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._background.stop(timeout_s)

    def check(self) -> None:
        """One look (the thread calls it every interval; tests call it)."""
        self.checks_done += 1
        try:
            head = self._store_position()
        except Exception as error:
            self._alerts.raise_alert(
                AlertKind.STORE_UNREACHABLE, "the event store does not answer",
                dedup_key=STORE_ALERT_KEY, seen_by="health_watch",
                error=type(error).__name__,
            )
            return
        try:
            read = self._read_position()
        except Exception as error:
            logger.warning("read models do not answer: %s", type(error).__name__)
            return
        if read is not None:
            self._check_progress(head, read)

    def _check_progress(self, head: int, read: int) -> None:
        now = self._monotonic()
        if self._last_read is None or read != self._last_read or read >= head:
            self._last_read, self._last_advance = read, now
            self._stalled_alerted = False
            return
        stalled_s = now - self._last_advance
        if stalled_s >= self.policy.stall_after_s and not self._stalled_alerted:
            self._stalled_alerted = True
            self._alerts.raise_alert(
                AlertKind.PROJECTION_STALLED, "the read models stopped following the log",
                dedup_key=f"stalled-at-{read}", read_model_position=read,
                log_position=head, stalled_s=round(stalled_s, 1),
            )
