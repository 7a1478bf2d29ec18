"""The loop every fold of the log runs: the next page after the tracked
position, applied with the new position in one transaction.

The consumer (the projector, the settlement fold) says where its tracking
stands and applies a page; the loop reads the page, remembers the position
the consumer reached, and forgets it when anything goes wrong, so the next
page starts from what the consumer's store committed. The remembered
position saves a query per page and is safe to trust: a consumer moves
tracking with ``Tracking.advance``, whose compare-and-set fails
(``TrackingConflict``) if another consumer moved it meanwhile.

Not thread-safe: each consumer runs its loop under a lock of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from application.eventlog.reader import EventLog, LogEvent


class LogConsumer(Protocol):
    def tracked_position(self) -> int:
        """The position committed with the consumer's last page."""
        ...

    def apply_page(self, previous: int, events: list[LogEvent]) -> None:
        """Apply ``events`` and move tracking from ``previous`` to the last
        event's position, in one transaction; all or nothing."""
        ...


class PageLoop:
    def __init__(
        self, log: EventLog, consumer: LogConsumer,
        read_page: Callable[[int, int], list[LogEvent]] | None = None,
    ) -> None:
        """``read_page(after, limit)`` reads a page (default: the log's own
        ``read``; the projector passes one that ends on whole commits)."""
        self._log = log
        self._consumer = consumer
        self._read_page = read_page or log.read
        self._position: int | None = None

    def position(self) -> int:
        """Where the consumer stands (remembered, or asked for)."""
        if self._position is None:
            self._position = self._consumer.tracked_position()
        return self._position

    def forget(self) -> None:
        """Ask the consumer again next time (after a rebuild, a stop, an error)."""
        self._position = None

    def apply_next(self, page_events: int) -> list[LogEvent]:
        """Read and apply the next page of at most ``page_events`` (the log
        caps it); returns it, empty when the consumer is at the log's head."""
        try:
            previous = self.position()
            events = self._read_page(previous, page_events)
            if events:
                self._consumer.apply_page(previous, events)
                self._position = events[-1].position
            return events
        except BaseException:
            self.forget()
            raise
