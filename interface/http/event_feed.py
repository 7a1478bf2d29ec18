"""One reader of new business events per process, fanned out to every
waiting long poll and SSE stream; and the bound on how many may wait.

A long poll that finds nothing new used to re-read the log itself on every
commit, on the thread pool that commands and reads share: N idle waiters
cost N reads per commit, so a few hundred idle subscribers slowed every
other client. Here a waiter registers its cursor, types and limit with the
process's ``EventFeed`` and sleeps on a future. On each commit the feed
reads the new stored events ONCE (one thread-pool task, whoever waits) and
hands each waiter, in memory, the events past its cursor that match its
types; a waiter that nothing matches only has its cursor moved on and
stays asleep. Order, cursors and filters are the stream's own: the feed
reads with ``EventStream.page`` and never skips a scanned position.

``WaitSlots`` bounds the waiters (long polls with ``wait_s`` and SSE
streams): ``PER_KEY`` per API key and ``TOTAL`` per process; beyond them a
request is refused with 429 ``rate_limited`` and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from interface.http.errors import RateLimited
from projections.event_stream import SCAN_EVENTS_MAX, StreamPage
from projections.progress import Progress

IDLE_CHECK_S = 1.0
"""How often the feed's reader looks whether anyone still waits."""
SLOTS_RETRY_AFTER_S = 1
"""Retry-After (s) of a wait refused because every slot is taken."""

ReadPage = Callable[[int], Awaitable[StreamPage]]
"""Reads every business event after a position (all types, scan-bounded)."""


@dataclass(eq=False)
class Waiter:
    """A sleeping long poll: ``cursor`` is where its scan has got to."""

    cursor: int
    limit: int
    types: frozenset[str] | None
    future: asyncio.Future[StreamPage] = field(repr=False)

    def offer(self, page: StreamPage) -> bool:
        """Take the page's events past the cursor that match; True when
        any did (the future is resolved), else just move the cursor on."""
        matching = [event for event in page.events if event.position > self.cursor
                    and (self.types is None or event.type in self.types)]
        if not matching:
            self.cursor = max(self.cursor, page.next_after)
            return False
        taken = matching[:self.limit]
        next_after = taken[-1].position if len(matching) > self.limit else page.next_after
        self.future.set_result(StreamPage(taken, self.cursor, next_after, page.head))
        return True


class EventFeed:
    """The process's one reader for waiting subscribers (one per event loop;
    made on it). Every waiter's cursor is at or past ``_position`` while
    it waits, so a read from ``_position`` covers all of them.

    ``read_calls`` counts its log reads (what the fan-out saves is visible
    there: one per commit batch, however many wait)."""

    def __init__(self, read: ReadPage, progress: Progress) -> None:
        self._read = read
        self._progress = progress
        self._waiters: set[Waiter] = set()
        self._position = 0
        self._task: asyncio.Task[None] | None = None
        self._reading = False
        self.loop = asyncio.get_running_loop()
        self.read_calls = 0

    async def wait(self, cursor: int, limit: int, types: frozenset[str] | None,
                   timeout_s: float) -> StreamPage | None:
        """Events after ``cursor`` (the head the caller read up to), or an
        empty page at the cursor reached once ``timeout_s`` passes. None:
        the feed has already read past ``cursor``, so the caller reads
        once more itself (its next cursor is then at or past the feed's)."""
        if cursor < self._position and (self._waiters or self._reading):
            return None
        if not self._waiters and not self._reading:
            self._position = cursor
        waiter = Waiter(cursor, limit, types, asyncio.get_running_loop().create_future())
        self._waiters.add(waiter)
        self._ensure_reader()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        except TimeoutError:
            if waiter.future.done():
                return waiter.future.result()
            return StreamPage([], cursor, waiter.cursor, waiter.cursor)
        finally:
            self._waiters.discard(waiter)

    def _ensure_reader(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        """Read each new stretch of the log once while anyone waits."""
        while self._waiters:
            if not await self._progress.reached(self._position + 1, IDLE_CHECK_S):
                continue
            if not self._waiters:
                return
            self.read_calls += 1
            self._reading = True
            try:
                page = await self._read(self._position)
            except Exception as error:  # each waiter answers with it, as its own read would
                self._fail(error)
                continue
            finally:
                self._reading = False
            self._deliver(page)

    def _deliver(self, page: StreamPage) -> None:
        self._position = max(self._position, page.next_after)
        for waiter in list(self._waiters):
            if not waiter.future.done() and waiter.offer(page):
                self._waiters.discard(waiter)

    def _fail(self, error: Exception) -> None:
        for waiter in list(self._waiters):
            if not waiter.future.done():
                waiter.future.set_exception(error)
        self._waiters.clear()


def all_events_after(read: Callable[..., Awaitable[StreamPage]]) -> ReadPage:
    """A ``ReadPage`` over a stream read (``read(after, limit, types)``)."""
    async def read_page(after: int) -> StreamPage:
        return await read(after, SCAN_EVENTS_MAX, None)
    return read_page


class WaitSlots:
    """How many requests may wait for events at once: ``per_key`` for one
    API key, ``total`` for the process. Atomic on the event loop (no awaits)."""

    PER_KEY = 100
    TOTAL = 1000

    def __init__(self, per_key: int = PER_KEY, total: int = TOTAL) -> None:
        self.per_key = per_key
        self.total = total
        self._held: dict[str, int] = {}

    @property
    def held(self) -> int:
        return sum(self._held.values())

    def check(self, key: str) -> None:
        """Refuse (429 ``rate_limited``) when ``key`` could not take a slot now."""
        if self._held.get(key, 0) >= self.per_key:
            raise RateLimited(SLOTS_RETRY_AFTER_S, f"{key!r} already holds {self.per_key} "
                              "long polls/event streams (the most one key may hold)")
        if self.held >= self.total:
            raise RateLimited(SLOTS_RETRY_AFTER_S, f"this server already holds {self.total} "
                              "long polls/event streams (the most it serves at once)")

    @contextlib.contextmanager
    def slot(self, key: str, checked: bool = False) -> Iterator[None]:
        """Hold one slot for ``key``; 429 ``rate_limited`` when none is free.
        ``checked``: the caller already checked (an SSE stream, before its
        headers went out), so take it without refusing."""
        if not checked:
            self.check(key)
        self._held[key] = self._held.get(key, 0) + 1
        try:
            yield
        finally:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
