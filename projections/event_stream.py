"""Pages of the business event stream, read from the log after a position.

A page is read from the log itself (through its one reader), not from a
read model: the log holds every acknowledged command, so the stream needs
no table of its own and is never behind. Most stored events are no
business event (a movement's debit and credit, for instance), and a type
filter leaves out more; so a page scans a bounded number of stored events
(``SCAN_EVENTS_MAX``) and says where its scan stopped (``next_after``):
the next page, or the next long poll, starts there, and nothing between
the two is skipped or seen twice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from uuid import UUID

from application.eventlog.decoder import EventDecoder
from application.eventlog.reader import EventLog, LogEvent
from domain.errors import LedgerError
from projections.business_events import BusinessEvent, BusinessEvents

SCAN_EVENTS_MAX = 5000
"""Stored events one page reads at most, however few of them it lists."""
READ_EVENTS = 1000
"""Stored events read per query while a page is filled."""


class EventUndecodable(LedgerError):
    """A stored row the stream cannot read: listing past it would hide an
    event from every subscriber, so the page stops and says where."""

    code = "store_damaged"


@dataclass(frozen=True)
class StreamPage:
    """Business events after ``after``; ``next_after`` is where the scan
    stopped (the cursor of the next page); ``head`` the log's head it read up to."""

    events: list[BusinessEvent]
    after: int
    next_after: int
    head: int

    @property
    def has_more(self) -> bool:
        return self.next_after < self.head


class EventStream:
    def __init__(self, log: EventLog, decoder: EventDecoder) -> None:
        self.log = log
        self.decoder = decoder
        self.events = BusinessEvents(decoder, self._recorded_of)

    def head(self) -> int:
        return self.log.head()

    def _recorded_of(self, transfer_hex: str) -> dict | None:
        """A movement's first event (its recording), read from the log."""
        first = self.log.read_aggregate(UUID(hex=transfer_hex), 0, 1)
        if not first:
            return None
        return self.decoder.fields(first[0].state, first[0].topic)

    def page(self, after: int, limit: int, types: Collection[str] | None = None,
             upto: int | None = None) -> StreamPage:
        """At most ``limit`` business events after ``after`` (of ``types``,
        all when None), up to ``upto`` (default: the log's head now)."""
        head = self.log.head() if upto is None else upto
        found: list[BusinessEvent] = []
        position = after
        while len(found) < limit and position < head and position - after < SCAN_EVENTS_MAX:
            stored = self.log.read(position, READ_EVENTS, upto=head)
            if not stored:
                break
            for event in stored:
                public = self._public(event)
                position = event.position
                if public is not None and (types is None or public.type in types):
                    found.append(public)
                    if len(found) == limit:
                        break
        return StreamPage(found, after, position, head)

    def _public(self, event: LogEvent) -> BusinessEvent | None:
        try:
            return self.events.of(event)
        except Exception as error:
            raise EventUndecodable(
                f"the stored event at position {event.position} cannot be read "
                f"({type(error).__name__}); the event stream stops before it"
            ) from None
