"""One loop on a daemon thread beside the request path, and the event that
asks it to stop.

The hold-expiry sweeper, the health watch, the store probe, the
suspicious-activity monitor and the alert webhook each run such a loop;
they start, stop and restart the same way, so they share this instead of
each keeping its own thread bookkeeping. (The projector keeps its own: the
projections layer does not import the application's internals.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class BackgroundThread:
    def __init__(self, name: str, loop: Callable[[], None]) -> None:
        self.name = name
        self._loop = loop
        self.stopping = threading.Event()
        """Set by ``stop``; the loop returns soon after it is set."""
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop; a no-op while it runs, a restart after ``stop``."""
        if self._thread is not None:
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Ask the loop to return and wait for it, at most ``timeout_s``
        (a daemon thread still busy then cannot hold up the exit)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


def periodic(
    name: str, interval_s: float, task: Callable[[], object], *,
    failure: str, log: logging.Logger,
) -> BackgroundThread:
    """A background thread that runs ``task`` every ``interval_s`` until
    stopped. A failing run is logged (``failure``, on the caller's logger)
    and the next interval tries again: one bad run must not end a sweep the
    service relies on."""
    worker: BackgroundThread

    def loop() -> None:
        while not worker.stopping.wait(interval_s):
            try:
                task()
            except Exception:
                log.exception("%s", failure)

    worker = BackgroundThread(name, loop)
    return worker
