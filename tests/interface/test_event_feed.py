"""The shared event feed: idle long polls cost no log reads of their own,
and the bound on how many may wait."""

from __future__ import annotations

import asyncio

import pytest

from interface.http.errors import RateLimited
from interface.http.event_feed import EventFeed, WaitSlots
from projections.business_events import BusinessEvent, event_id
from projections.event_stream import StreamPage
from projections.progress import Progress

IDLE_WAITERS = 200
COMMITS = 10


class Log:
    """A log of one fee per position; counts the feed's reads."""

    def __init__(self) -> None:
        self.events: list[BusinessEvent] = []
        self.reads = 0

    @property
    def head(self) -> int:
        return len(self.events)

    def commit(self, progress: Progress) -> None:
        position = self.head + 1
        self.events.append(BusinessEvent(event_id(position), position, "fee.charged", "", {}))
        progress.advance(position)

    async def read(self, after: int) -> StreamPage:
        self.reads += 1
        return StreamPage(self.events[after:], after, self.head, self.head)


def test_idle_waiters_cost_one_read_per_commit_not_one_each():
    async def scenario() -> None:
        log, progress = Log(), Progress()
        feed = EventFeed(log.read, progress)
        idle = [asyncio.create_task(feed.wait(0, 10, frozenset({"hold.expired"}), 60))
                for _ in range(IDLE_WAITERS)]
        for _ in range(COMMITS):
            cursor = log.head
            probe = asyncio.create_task(feed.wait(cursor, 10, frozenset({"fee.charged"}), 60))
            await asyncio.sleep(0)  # let the probe register before the commit
            log.commit(progress)
            page = await probe
            assert page is not None
            assert [e.position for e in page.events] == [cursor + 1]
            assert page.next_after == log.head
        assert log.reads <= COMMITS  # not IDLE_WAITERS * COMMITS
        assert not any(task.done() for task in idle)  # nothing they wait for came
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)

    asyncio.run(scenario())


def test_a_waiter_that_times_out_answers_empty_at_the_scanned_position():
    async def scenario() -> None:
        log, progress = Log(), Progress()
        feed = EventFeed(log.read, progress)
        idle = asyncio.create_task(feed.wait(0, 10, frozenset({"hold.expired"}), 0.5))
        probe = asyncio.create_task(feed.wait(0, 10, None, 60))
        await asyncio.sleep(0)
        log.commit(progress)
        assert [e.position for e in (await probe).events] == [1]
        page = await idle
        assert page is not None and page.events == [] and page.next_after == 1

    asyncio.run(scenario())


def test_a_waiter_behind_the_feed_is_told_to_read_itself():
    async def scenario() -> None:
        log, progress = Log(), Progress()
        feed = EventFeed(log.read, progress)
        ahead = asyncio.create_task(feed.wait(0, 10, frozenset({"hold.expired"}), 60))
        probe = asyncio.create_task(feed.wait(0, 10, None, 60))
        await asyncio.sleep(0)
        log.commit(progress)
        await probe
        assert await feed.wait(0, 10, None, 60) is None  # the feed read past 0 already
        ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)

    asyncio.run(scenario())


def test_wait_slots_bound_each_key_and_the_total():
    slots = WaitSlots(per_key=2, total=3)
    with slots.slot("a"), slots.slot("a"):
        with pytest.raises(RateLimited) as refused:
            slots.check("a")
        assert refused.value.headers["Retry-After"] == "1"
        with slots.slot("b"), pytest.raises(RateLimited):
            slots.check("c")
    assert slots.held == 0
    slots.check("a")
