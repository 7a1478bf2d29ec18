"""Is the PostgreSQL store reachable? Known within about two seconds.

The library's pooled reads wait for a connection and retry for many seconds
before giving up, so a request that meets a dead store would hang for a
quarter of a minute before its 503. A probe that opens a fresh connection
every second (``connect_timeout`` 2 s, nothing pooled, so a dead socket
cannot fool it) lets the HTTP layer answer ``unavailable`` at once while
the store is down, and stop doing so the moment it answers again.

The pool itself retries a lost connection every second instead of backing
off exponentially: after a long outage the first command must not wait
half a minute for the pool's next attempt.

SQLite is a file in the process's own data dir: there is nothing to probe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from application.alerts import STORE_ALERT_KEY, AlertKind, raise_alert
from application.ops.background import periodic

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 1.0
PROBE_CONNECT_TIMEOUT_S = 2


def reconnect_pools_every_second() -> None:
    """Constant one-second reconnection attempts for every psycopg pool of
    this process (the library's default doubles the wait up to minutes)."""
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.DELAY_BACKOFF = 1.0


class StoreHealth:
    """``down`` is what the last probe found; a background thread probes."""

    def __init__(self, conninfo: Mapping[str, Any] | None, interval_s: float = PROBE_INTERVAL_S) -> None:
        self._conninfo = dict(conninfo) if conninfo else None
        self._down = False
        self._background = periodic("store-health", interval_s, self.probe,
                                    failure="store probe failed", log=logger)

    @property
    def down(self) -> bool:
        return self._down

    def start(self) -> None:
        if self._conninfo is not None:
            self._background.start()

    def stop(self) -> None:
        self._background.stop(timeout_s=PROBE_CONNECT_TIMEOUT_S + 5)

    def probe(self) -> bool:
        """One fresh connection and ``SELECT 1``; True when it answered."""
        import psycopg

        if self._conninfo is None:
            return True
        try:
            with psycopg.connect(
                **self._conninfo, autocommit=True, connect_timeout=PROBE_CONNECT_TIMEOUT_S
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            self._set_down(True, type(error).__name__)
            return False
        self._set_down(False, "")
        return True

    def _set_down(self, down: bool, reason: str) -> None:
        if down and not self._down:
            logger.error("event store unreachable (%s); answering 503 until it is back", reason)
            raise_alert(AlertKind.STORE_UNREACHABLE, "the event store does not answer",
                        dedup_key=STORE_ALERT_KEY, seen_by="store_health", error=reason)
        elif not down and self._down:
            logger.warning("event store reachable again")
        self._down = down

