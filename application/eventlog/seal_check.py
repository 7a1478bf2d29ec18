"""Refusing what no seal vouches for: the one check the projector, the
settlement fold and the audit run on every page they read
(``application.eventlog.seals`` says what a seal is).

A checked page is the page's authenticated head, extended to the end of
the seal that holds its last event (so a fold never stands inside a
commit). When the page's very first event is not authenticated the check
raises ``UnauthenticatedEvent`` naming its position and tells the
consumer's ``on_refused`` (which raises an alert; the published log
imports nothing else of the application, so the alert is the caller's):
the consumer stops there and never skips it, so nothing after a forged
event is projected or settled either, until an operator has looked.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Protocol

from application.eventlog.reader import PAGE_EVENTS_MAX, LogEvent
from application.eventlog.seals import Seal, SealedEvent, SealKeys, seal_is_valid

ReadPage = Callable[[int, int], list[LogEvent]]
OnRefused = Callable[[int, str], None]


class UnauthenticatedEvent(Exception):
    """An event after the start of authentication that no valid seal covers."""

    def __init__(self, position: int, why: str) -> None:
        super().__init__(f"event at position {position} is not authenticated: {why}")
        self.position = position
        self.why = why


class SealedLog(Protocol):
    seal_keys: SealKeys | None

    def read(self, after: int, limit: int, upto: int | None = None) -> list[LogEvent]: ...

    def start_seal(self) -> Seal | None: ...

    def seals_from(self, last_at_least: int, limit: int) -> list[Seal]: ...

    def seal_before(self, position: int) -> Seal | None: ...

    def anchored_position(self) -> int: ...


def _sealed(event: LogEvent) -> SealedEvent:
    return (event.position, event.originator_id, event.version, event.topic, event.state)


class SealCheck:
    def __init__(self, log: SealedLog, keys: SealKeys, on_refused: OnRefused | None = None
                 ) -> None:
        self._log = log
        self._keys = keys
        self._on_refused = on_refused
        self._start: Seal | None = None
        self._anchored_upto = 0

    def verified(self, events: list[LogEvent]) -> list[LogEvent]:
        """The authenticated head of ``events`` (see the module docstring)."""
        if not events:
            return events
        try:
            return self._verified(events)
        except UnauthenticatedEvent as refused:
            if self._on_refused is not None:
                self._on_refused(refused.position, refused.why)
            raise

    def _verified(self, events: list[LogEvent]) -> list[LogEvent]:
        start = self._start_seal()
        unsealed_upto = start.last if start is not None else events[-1].position
        accepted = [event for event in events if event.position <= unsealed_upto]
        if accepted and start is None:  # the seals are gone: only what an anchor pins
            covered = self._anchored(accepted[-1].position)
            accepted = [event for event in accepted if event.position <= covered]
            if not accepted:
                raise UnauthenticatedEvent(events[0].position,
                                           "no commit seal exists and no anchor covers it")
        rest = events[len(accepted):]
        if not rest or start is None or rest[0].position <= start.last:
            return accepted  # the rest waits for an anchor (or is none)
        try:
            accepted.extend(self._sealed_head(rest, start))
        except UnauthenticatedEvent:
            if accepted:
                return accepted
            raise
        return accepted

    def _anchored(self, wanted: int) -> int:
        """How far the anchors recorded in the log reach, asked again only
        while it falls short of ``wanted`` (it only grows)."""
        if self._anchored_upto < wanted:
            self._anchored_upto = self._log.anchored_position()
        return self._anchored_upto

    def _start_seal(self) -> Seal | None:
        if self._start is None:
            start = self._log.start_seal()
            if start is not None and not seal_is_valid(self._keys, start, None, ()):
                raise UnauthenticatedEvent(start.last + 1, "the start seal's MAC is wrong")
            self._start = start
        return self._start

    def _sealed_head(self, events: Sequence[LogEvent], start: Seal) -> list[LogEvent]:
        """Whole sealed commits from ``events[0]`` on: raises at the first
        event no valid seal covers, having returned nothing before it.
        One pass over the page: each seal's events are the slice from where
        the last one ended (positions ascend), found by bisection."""
        first = events[0].position
        previous = self._log.seal_before(first)
        seals = self._log.seals_from(first, len(events) + 1)
        positions = [event.position for event in events]
        accepted: list[LogEvent] = []
        index = 0
        for seal in seals:
            if index >= len(events):
                break
            if seal.first != positions[index] or seal.is_start:
                break
            end = bisect_right(positions, seal.last, lo=index)
            covered = list(events[index:end])
            covered += self._rest(covered[-1].position, seal.last)
            if not seal_is_valid(self._keys, seal, previous, [_sealed(e) for e in covered]):
                break
            accepted.extend(covered)
            index = end
            previous = seal
        if not accepted:
            raise UnauthenticatedEvent(events[0].position, "no valid seal covers it")
        return accepted

    def _rest(self, after: int, last: int) -> list[LogEvent]:
        """The events of a seal past the page's end (a commit larger than a page)."""
        rest: list[LogEvent] = []
        while after < last:
            more = self._log.read(after, PAGE_EVENTS_MAX, upto=last)
            if not more:
                break
            rest.extend(more)
            after = more[-1].position
        return rest


def sealed_pages(log: object, read_page: ReadPage, on_refused: OnRefused | None = None
                 ) -> ReadPage:
    """``read_page`` checked against the log's seals whenever the log has
    keys (looked up on each read: keys may be given after a reader is made)."""
    checks: dict[int, SealCheck] = {}

    def read_checked(after: int, limit: int) -> list[LogEvent]:
        keys = getattr(log, "seal_keys", None)
        if keys is None:
            return read_page(after, limit)
        check = checks.get(id(keys))
        if check is None:
            check = checks.setdefault(id(keys), SealCheck(log, keys, on_refused))  # type: ignore[arg-type]
        return check.verified(read_page(after, limit))

    return read_checked
