"""Reading the next page while the current one is folded gives the pages a
plain loop would, in order, and a reader's error only when the consumer
reaches the page that failed."""

from __future__ import annotations

import threading

import pytest

from application.eventlog.read_ahead import pages_read_ahead
from application.eventlog.reader import LogEvent


class Log:
    def __init__(self, positions: list[int], failing_after: int | None = None) -> None:
        self.events = [LogEvent(p, f"{p:032x}", 1, "t", b"s") for p in positions]
        self.failing_after = failing_after
        self.reads: list[int] = []
        self.lock = threading.Lock()

    def read(self, after: int, limit: int) -> list[LogEvent]:
        with self.lock:
            self.reads.append(after)
        if after == self.failing_after:
            raise RuntimeError(f"no page after {after}")
        return [e for e in self.events if e.position > after][:limit]


def test_the_pages_are_those_a_loop_of_reads_gives_in_order():
    log = Log([1, 2, 3, 5, 8, 9, 10])
    pages = [[e.position for e in page] for page in pages_read_ahead(log.read, 0, 3)]
    assert pages == [[1, 2, 3], [5, 8, 9], [10]]


def test_a_failed_read_is_raised_after_every_page_before_it():
    log = Log([1, 2, 3, 4, 5], failing_after=4)
    pages = pages_read_ahead(log.read, 0, 2)
    assert [e.position for e in next(pages)] == [1, 2]
    assert [e.position for e in next(pages)] == [3, 4]
    with pytest.raises(RuntimeError, match="no page after 4"):
        next(pages)


def test_closing_early_reads_at_most_one_page_ahead():
    log = Log(list(range(1, 101)))
    pages = pages_read_ahead(log.read, 0, 10)
    next(pages)
    pages.close()
    assert log.reads == [0, 10]
