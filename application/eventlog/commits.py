"""Where a commit ends, so that every position a caller names means the
state after whole commands.

One transfer commits several events (recorded, debit, credit); a cut
between them is a state that never existed (a debit without its credit,
supply "not conserved"). The command processor stamps every event of one
group commit with the batch's one ``now`` and commits are contiguous in the
log (the PostgreSQL recorder locks the table, SQLite has one writer), so a
position ends a commit when the next stored event carries another stamp,
and the log's head always ends one (a commit becomes visible whole). Two
commits stamped alike read as one group: that only coarsens the cuts, and
the state after both existed too. This holds for data written by every
earlier version as well (the golden ledger), since the processor has always
stamped a batch with one time.

``ends_commit`` is the one rule; everything else asks it (a per-commit
authenticator can replace it there). An event whose stamp cannot be read
(a damaged row) is taken to stand alone, so a cut never waits on it; the
audit reports the row itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from application.eventlog.decoder import EventDecoder
from application.eventlog.reader import PAGE_EVENTS_MAX, EventLog, LogEvent

WALK_EVENTS = 1000
"""Events read per step when a commit is walked backwards or forwards."""

ReadAfter = Callable[[int, int], list[LogEvent]]


class CommitBoundaries:
    """Questions about commit boundaries, answered from the stored log."""

    def __init__(self, log: EventLog, decoder: EventDecoder) -> None:
        self._log = log
        self._decoder = decoder

    def stamp(self, event: LogEvent) -> str | None:
        """The commit stamp of ``event``; None when its row cannot be decoded."""
        try:
            return self._decoder.timestamp(event.state)
        except Exception:  # a damaged row: see the module docstring
            return None

    def ends_commit(self, event: LogEvent, following: LogEvent | None) -> bool:
        """THE rule: ``event`` is the last of its commit when nothing follows
        it yet or the next event carries another stamp."""
        if following is None:
            return True
        mine, theirs = self.stamp(event), self.stamp(following)
        return mine is None or theirs is None or mine != theirs

    def cut(self, position: int) -> int:
        """The last position at or before ``position`` that ends a commit
        (``position`` itself when it does; 0 before the first commit)."""
        following = self._log.read(position, 1)
        back = self._log.read_back(position, 1)
        if not back:
            return 0
        if not following or self.ends_commit(back[0], following[0]):
            return position
        return self._start_of(back[0]) - 1

    def _start_of(self, event: LogEvent) -> int:
        """The first position of the commit that holds ``event`` (walking
        back while the stamps agree)."""
        stamp = self.stamp(event)
        first = event.position
        while True:
            older = self._log.read_back(first - 1, WALK_EVENTS)
            for candidate in older:
                if stamp is None or self.stamp(candidate) != stamp:
                    return first
                first = candidate.position
            if len(older) < WALK_EVENTS:
                return first

    def end_of(self, position: int) -> int:
        """The last position of the commit that holds ``position`` (walking
        forward while the stamps agree): the position a command's answer
        carries, so a repeat finds it again from the command's own event."""
        held = self._log.read(position - 1, 1)
        if not held:
            return position
        stamp = self.stamp(held[0])
        last = held[0].position
        step = 8  # most commits are small: read a few, then more
        while True:
            newer = self._log.read(last, step)
            for candidate in newer:
                if stamp is None or self.stamp(candidate) != stamp:
                    return last
                last = candidate.position
            if len(newer) < step:
                return last
            step = min(step * 4, WALK_EVENTS)

    def page(self, after: int, limit: int) -> list[LogEvent]:
        """Events after ``after`` (a commit boundary) ending on a commit
        boundary: at most ``limit`` events, fewer to end where a commit
        ends, more only when one commit alone holds more than ``limit``."""
        return self.whole(self._log.read, after, limit)[0]

    def whole(self, read_after: ReadAfter, after: int, limit: int
              ) -> tuple[list[LogEvent], bool]:
        """A page of ``read_after(after, n)`` (the log, or one aggregate's
        events) that never stops inside a commit, and whether more follow."""
        limit = max(1, min(limit, PAGE_EVENTS_MAX - 1))
        events = read_after(after, limit + 1)
        if len(events) <= limit:
            return events, False  # the rest of the log is in it: its end ends a commit
        following = events.pop()
        trimmed = self.trim(events, following)
        if trimmed:
            return trimmed, True
        rest = self._rest_of_commit(read_after, events[-1], following)
        return events + rest, True

    def trim(self, events: list[LogEvent], following: LogEvent | None) -> list[LogEvent]:
        """The longest head of ``events`` that ends on a commit boundary,
        given the event that ``following`` them (None: nothing follows)."""
        if following is None:
            return events
        later = self.stamp(following)
        for index in range(len(events) - 1, -1, -1):
            stamp = self.stamp(events[index])
            if stamp is None or later is None or stamp != later:
                return events[:index + 1]
            later = stamp
        return []

    def _rest_of_commit(
        self, read_after: ReadAfter, last: LogEvent, following: LogEvent
    ) -> list[LogEvent]:
        """``following`` and the events after it in the same commit as ``last``."""
        stamp = self.stamp(last)
        rest: list[LogEvent] = []
        batch = [following]
        while batch:
            for event in batch:
                if stamp is None or self.stamp(event) != stamp:
                    return rest
                rest.append(event)
            batch = read_after(rest[-1].position, WALK_EVENTS)
        return rest

    def time_at(self, position: int) -> str | None:
        """The stamp of the commit that the state at ``position`` ends with
        (None for the empty log): time-dependent state (a hold's expiry) at
        a position is judged at this time, so the same question always gets
        the same answer."""
        back = self._log.read_back(position, 1)
        return self.stamp(back[0]) if back else None

    def at_time(self, moment: datetime, head: int) -> int:
        """The last whole commit stamped at or before ``moment`` (0 when the
        log starts after it): a time names the state after whole commands,
        like a position, so ``at=<time>`` and ``at=<that position>`` give
        one answer. Commit stamps grow along the log (the processor stamps
        a batch when it takes its turn), so a binary search over positions
        finds it in O(log n) reads; ``cut`` keeps it whole all the same."""
        low, high, found = 1, head, 0
        while low <= high:
            middle = (low + high) // 2
            back = self._log.read_back(middle, 1)
            if not back:  # nothing at or before middle
                low = middle + 1
                continue
            stamp = self.stamp(back[0])
            if stamp is None or _parsed(stamp) <= moment:
                found = max(found, back[0].position)
                low = middle + 1
            else:  # stamped after: so is everything after it
                high = back[0].position - 1
        return self.cut(found) if found else 0


def _parsed(stamp: str) -> datetime:
    """A stored stamp (ISO text, always with its offset) as a time."""
    return datetime.fromisoformat(stamp)
