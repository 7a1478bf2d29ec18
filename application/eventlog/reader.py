"""The one reader of the stored event log: what each consumer asks of it.

The log is read with plain SQL on the application's own events table,
through the recorder's own datastore (so connection settings and schema
are the application's), not with the recorder's ``select_notifications``:
that builds a dict or ``sqlite3.Row`` and a ``UUID`` per row, which costs
more than the rest of a replay. The few statements differ by database
(``sqlite_log``, ``postgres_log``); what is asked and how a page is bounded
is written once, here.

Every read is tried twice: a pooled connection the server has dropped fails
once and is discarded, and the next attempt gets a fresh one. Only two
quick attempts, because these queries are also how a command notices that
the store is really down, and each waits up to the pool's timeout for a
connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import retry

from application.eventlog.seals import Seal, SealKeys

PAGE_EVENTS_MAX = 10_000
ANCHOR_RECORDED_TOPIC = "domain.anchor:Anchor.Recorded"
CHANGES_PER_QUERY_MAX = 10_000
REFS_PER_QUERY_MAX = 10_000
"""Events named per ``latest_position_of`` query (a batch holds at most 8,000)."""
"""The default size of ``changes_after``; a caller may ask for more (the
command writer does, to know when to drop its whole cache instead)."""

reconnect = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.05)


@dataclass(slots=True)
class LogEvent:
    """One stored event as the log holds it (``state`` is the stored bytes,
    which the hash chain covers)."""

    position: int
    originator_id: str  # UUID hex, no dashes
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Change:
    """That ``aggregate_id`` reached ``version`` at ``position`` (no state:
    cheap enough to ask before every batch of commands)."""

    aggregate_id: UUID
    version: int
    position: int


class EventLog(Protocol):
    """What the log's consumers ask of the event store."""

    def head(self) -> int:
        """The last position (0 for an empty log)."""
        ...

    def read(self, after: int, limit: int, upto: int | None = None) -> list[LogEvent]:
        """At most ``limit`` events after ``after`` (and at or below ``upto``)."""
        ...

    def read_back(self, upto: int, limit: int) -> list[LogEvent]:
        """At most ``limit`` events at or before ``upto``, newest first."""
        ...

    def read_aggregate(self, aggregate_id: UUID, after: int, limit: int) -> list[LogEvent]: ...

    def position_of(self, aggregate_id: UUID, version: int) -> int | None: ...

    def latest_position_of(self, refs: Sequence[tuple[UUID, int]]) -> int | None:
        """The latest position among these events (aggregate id, version);
        None when none of them is stored."""
        ...

    def changes_after(self, position: int, limit: int = CHANGES_PER_QUERY_MAX) -> list[Change]: ...

    def session(self) -> AbstractContextManager[None]:
        """The calling thread's questions inside ask on one connection, taken
        (and checked) once, not one each: a fold's page asks several."""
        ...


@dataclass(frozen=True)
class Statements:
    """One database's text for each question; parameters in the order used below."""

    head: Any
    read: Any  # (after, limit)
    read_back: Any  # (upto, limit)
    read_aggregate: Any  # (aggregate key, after, limit)
    position_of: Any  # (aggregate key, version)
    latest_position_of: Any  # (the refs, as ``_refs_params`` gives them)
    changes_after: Any  # (position, limit)


class SqlEventLog:
    """The questions, bounded and retried; a subclass runs a statement."""

    statements: Statements
    seal_statements: tuple[Any, Any, Any] | None = None
    """(start seal, seals from a last position on, the seal before a position)."""
    anchor_statement: Any = None
    """(topic): the stored state of the latest event with that topic."""
    seal_keys: SealKeys | None = None
    """Set when the application has commit seal keys: its consumers check seals."""

    def _rows(self, statement: Any, params: tuple[Any, ...] = ()) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def session(self) -> AbstractContextManager[None]:
        """Nothing to share by default (SQLite opens no pooled connection)."""
        return nullcontext()

    def _aggregate_key(self, aggregate_id: UUID) -> Any:
        """The aggregate id as the events table's column takes it."""
        raise NotImplementedError

    def _refs_params(self, refs: Sequence[tuple[UUID, int]]) -> tuple[Any, ...]:
        """Events named by (aggregate id, version), as the database takes a list."""
        raise NotImplementedError

    @reconnect
    def head(self) -> int:
        rows = self._rows(self.statements.head)
        return (rows[0][0] if rows else 0) or 0

    @reconnect
    def read(self, after: int, limit: int, upto: int | None = None) -> list[LogEvent]:
        """A page after ``after``, up to ``upto`` when given.

        The upper bound is applied here, not in SQL: with ``id > a AND id <= b``
        PostgreSQL estimated the range from (often stale) statistics and chose a
        bitmap scan of everything up to ``b`` plus a sort, so each page of an
        audit cost time in proportion to the rest of the log (65 ms against
        2 ms for a page of 5,000 with 100,000 events to go). ``id > a ORDER BY
        id LIMIT n`` always walks the index. At most ``upto - after`` rows can
        be at or below ``upto``, so no more than that are fetched."""
        limit = min(limit, PAGE_EVENTS_MAX)
        if upto is not None:
            if upto <= after:
                return []
            limit = min(limit, upto - after)
        events = [LogEvent(*row) for row in self._rows(self.statements.read, (after, limit))]
        if upto is None:
            return events
        return [event for event in events if event.position <= upto]

    @reconnect
    def read_back(self, upto: int, limit: int) -> list[LogEvent]:
        params = (upto, min(limit, PAGE_EVENTS_MAX))
        return [LogEvent(*row) for row in self._rows(self.statements.read_back, params)]

    @reconnect
    def read_aggregate(self, aggregate_id: UUID, after: int, limit: int) -> list[LogEvent]:
        params = (self._aggregate_key(aggregate_id), after, min(limit, PAGE_EVENTS_MAX))
        return [LogEvent(*row) for row in self._rows(self.statements.read_aggregate, params)]

    @reconnect
    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        rows = self._rows(self.statements.position_of, (self._aggregate_key(aggregate_id), version))
        return rows[0][0] if rows else None

    @reconnect
    def latest_position_of(self, refs: Sequence[tuple[UUID, int]]) -> int | None:
        """One query per few thousand events, not one per event: a repeated
        batch of 8,000 transfers answers with the latest of their positions."""
        found = [
            rows[0][0]
            for start in range(0, len(refs), REFS_PER_QUERY_MAX)
            if (rows := self._rows(self.statements.latest_position_of,
                                   self._refs_params(refs[start:start + REFS_PER_QUERY_MAX])))
            and rows[0][0] is not None
        ]
        return max(found) if found else None

    @reconnect
    def start_seal(self) -> Seal | None:
        seals = self._seals(0, ())
        return seals[0] if seals else None

    @reconnect
    def seals_from(self, last_at_least: int, limit: int) -> list[Seal]:
        return self._seals(1, (last_at_least, min(limit, PAGE_EVENTS_MAX)))

    @reconnect
    def seal_before(self, position: int) -> Seal | None:
        seals = self._seals(2, (position,))
        return seals[0] if seals else None

    @reconnect
    def anchored_position(self) -> int:
        """The position the latest anchor recorded in the log covers (0: none).
        Read only while unsealed events are read (a scan by topic)."""
        rows = self._rows(self.anchor_statement, (ANCHOR_RECORDED_TOPIC,))
        if not rows:
            return 0
        try:
            position = orjson.loads(bytes(rows[0][0]))["position"]
        except Exception:  # a damaged anchor row covers nothing
            return 0
        return position if isinstance(position, int) else 0

    def _seals(self, which: int, params: tuple[Any, ...]) -> list[Seal]:
        """Seal rows; none from a store whose seals table was never made (a
        log written before seals, opened read-only by verify-proof)."""
        if self.seal_statements is None:
            return []
        try:
            rows = self._rows(self.seal_statements[which], params)
        except Exception as error:
            if "commit_seals" in str(error) and ("no such table" in str(error)
                                                  or "does not exist" in str(error)):
                return []
            raise
        return [Seal(row[0], row[1], row[2], bytes(row[3])) for row in rows]

    @reconnect
    def changes_after(self, position: int, limit: int = CHANGES_PER_QUERY_MAX) -> list[Change]:
        rows = self._rows(self.statements.changes_after, (position, limit))
        return [Change(_uuid(row[0]), row[1], row[2]) for row in rows]


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
