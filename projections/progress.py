"""How far the read models have applied the log, and waiting on it without
holding a thread.

A consistent read names the position its answer must include (the log's
head when it arrived, or the caller's ``min_position``) and waits until the
read models have applied it. ``Progress`` is the one place that knows how
far they have got in this process: the projector advances it after each
page commits (in its own process), and ``ProgressFollower`` advances it from
the store's tracking position when the projector runs elsewhere (a
``deals-ledger project`` worker, another API process).

Waiting comes in two kinds: an ``asyncio`` future per waiting request (the
HTTP API: thousands may wait and no thread is held, so a flood of reads
naming far positions cannot starve the thread pool) and a blocking wait for
the CLI and tests. Both are bounded by the caller's timeout.

The follower reads the tracking position (one indexed row) every
``FOLLOW_INTERVAL_S`` only while some request waits past what is known, so
an idle process sends nothing and a busy one sends at most one small query
per interval however many requests wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.002
"""Between two reads of the store's tracking position while requests wait
on a projector of another process."""
FOLLOW_ERROR_BACKOFF_S = 0.5


class Progress:
    """The position the read models have reached, as this process knows it,
    and the requests and threads waiting for more."""

    def __init__(self, position: int = 0) -> None:
        self._position = position
        self._condition = threading.Condition()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.waiting = threading.Event()
        """Set while an async waiter wants more than is known (the follower's cue)."""

    @property
    def position(self) -> int:
        return self._position

    @property
    def wanted(self) -> int:
        """The furthest position a waiting request wants (0: none waits)."""
        with self._condition:
            return max((wanted for wanted, _, _ in self._waiters), default=0)

    def advance(self, position: int) -> None:
        """Record a position the read models have applied (never backwards);
        wakes every waiter it satisfies. Safe from any thread."""
        with self._condition:
            if position > self._position:
                self._position = position
            self._condition.notify_all()
            self._release(lambda wanted: wanted <= self._position)

    def reset(self, position: int) -> None:
        """After a rebuild: the read models start again from ``position``."""
        with self._condition:
            self._position = position
            self._condition.notify_all()

    def wait_past(self, position: int, timeout_s: float) -> bool:
        """Block until ``position`` is reached or ``timeout_s`` passes."""
        with self._condition:
            return self._condition.wait_for(lambda: self._position >= position, timeout_s)

    async def reached(self, position: int, timeout_s: float) -> bool:
        """Await ``position`` without holding a thread; False after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (position, loop, future)
        with self._condition:
            if self._position >= position:
                return True
            self._waiters.append(entry)
            self.waiting.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return self._position >= position
        finally:
            with self._condition:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                if not self._waiters:
                    self.waiting.clear()

    def _release(self, satisfied: Callable[[int], bool]) -> None:
        """Resolve the satisfied async waiters (under the condition's lock)."""
        keep = []
        for entry in self._waiters:
            wanted, loop, future = entry
            if satisfied(wanted):
                with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, future)
            else:
                keep.append(entry)
        self._waiters = keep
        if not keep:
            self.waiting.clear()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ProgressFollower:
    """Advances ``progress`` from the store's tracking position while a
    request waits for more than this process knows (a projector in another
    process does the work). One daemon thread per process."""

    def __init__(
        self, progress: Progress, read_position: Callable[[], int],
        interval_s: float = FOLLOW_INTERVAL_S,
    ) -> None:
        self.progress = progress
        self.read_position = read_position
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProgressFollower:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="read-progress-follower",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self.progress.waiting.set()  # wake it to see the stop
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.progress.waiting.wait()
            if self._stopping.is_set():
                return
            if self.progress.wanted <= self.progress.position:
                self._stopping.wait(self.interval_s)
                continue
            try:
                self.progress.advance(self.read_position())
            except Exception as error:  # the store is down: waiters time out
                logger.warning("read-model position unavailable (%s)", type(error).__name__)
                self._stopping.wait(FOLLOW_ERROR_BACKOFF_S)
                continue
            self._stopping.wait(self.interval_s)
