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

One failed probe proves little: under CPU load a connection can take longer
than its timeout, and a server at its connection limit refuses new sessions
while the pool's open ones serve commands well. So the probe tells three
answers apart. *Full* (SQLSTATE 53300 too_many_connections) means the
server is up: never down. *Slow* (the connect timed out) and *unreachable*
(refused, reset, no route) count as failures, and the store is declared
down only after ``FAILED_PROBES_DOWN`` of them in a row (about two
seconds); one probe that answers declares it up again.

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
FAILED_PROBES_DOWN = 2
"""Consecutive failed probes (slow or unreachable) before the store is down."""
SERVER_UP_SQLSTATES = frozenset({"53300"})
"""too_many_connections: the server answered, it is up, and full."""
SERVER_FULL_MESSAGES = (
    "too many connections", "too many clients", "remaining connection slots are reserved",
)
"""libpq reports a refused session without its SQLSTATE (psycopg's error has
none), so a full server is also known by the server's own words (in the
server's default English messages)."""


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
        self._failures = 0
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
        """One fresh connection and ``SELECT 1``; True when the server
        answered (a full server answers too: it is up)."""
        import psycopg

        if self._conninfo is None:
            return True
        try:
            with psycopg.connect(
                **self._conninfo, autocommit=True, connect_timeout=PROBE_CONNECT_TIMEOUT_S
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            if _server_is_full(error):
                logger.info("store probe: the server is up but full")
            else:
                self._failed(type(error).__name__)
                return False
        self._failures = 0
        self._set_down(False, "")
        return True

    def _failed(self, reason: str) -> None:
        self._failures += 1
        if self._failures >= FAILED_PROBES_DOWN:
            self._set_down(True, reason)

    def _set_down(self, down: bool, reason: str) -> None:
        if down and not self._down:
            logger.error("event store unreachable (%s); answering 503 until it is back", reason)
            raise_alert(AlertKind.STORE_UNREACHABLE, "the event store does not answer",
                        dedup_key=STORE_ALERT_KEY, seen_by="store_health", error=reason)
        elif not down and self._down:
            logger.warning("event store reachable again")
        self._down = down


def _server_is_full(error: Exception) -> bool:
    if getattr(error, "sqlstate", None) in SERVER_UP_SQLSTATES:
        return True
    text = str(error)
    return any(words in text for words in SERVER_FULL_MESSAGES)
