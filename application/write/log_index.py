"""Small position queries on the application's event table.

The eventsourcing recorders answer "events of one aggregate" and "events
after a position"; the command writer also needs "at which position is
version v of aggregate x" (to answer a retried command with its first
position) and "which aggregates changed after position p" (to drop cached
aggregates another process wrote). These read only ids and versions, never
event state, so they stay cheap on every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, InterfaceError, OperationalError
from eventsourcing.utils import retry

# A pooled connection the server has dropped fails once and is discarded;
# the next attempt gets a fresh one. Two quick attempts: these queries are
# also how a command notices that the store is really down, and each waits
# up to the pool's timeout for a connection.
_reconnect = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.05)

CHANGES_PER_QUERY_MAX = 10_000


@dataclass(frozen=True)
class Change:
    aggregate_id: UUID
    version: int
    position: int


class LogIndex(Protocol):
    def max_position(self) -> int: ...

    def position_of(self, aggregate_id: UUID, version: int) -> int | None: ...

    def changes_after(self, position: int, limit: int = CHANGES_PER_QUERY_MAX) -> list[Change]: ...


class SQLiteLogIndex:
    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        self._table = recorder.events_table_name  # type: ignore[attr-defined]

    @_reconnect
    def max_position(self) -> int:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT MAX(rowid) FROM {self._table}")  # noqa: S608
            return cursor.fetchone()[0] or 0

    @_reconnect
    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT rowid FROM {self._table} "  # noqa: S608
                "WHERE originator_id = ? AND originator_version = ?",
                (aggregate_id.hex, version),
            )
            row = cursor.fetchone()
            return None if row is None else row[0]

    @_reconnect
    def changes_after(self, position: int, limit: int = CHANGES_PER_QUERY_MAX) -> list[Change]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT originator_id, originator_version, rowid FROM {self._table} "  # noqa: S608
                "WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (position, limit),
            )
            return [Change(UUID(row[0]), row[1], row[2]) for row in cursor.fetchall()]


class PostgresLogIndex:
    def __init__(self, recorder: ApplicationRecorder) -> None:
        from psycopg.sql import SQL, Identifier

        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        table = SQL("{}.{}").format(
            Identifier(self._datastore.schema),
            Identifier(recorder.events_table_name),  # type: ignore[attr-defined]
        )
        self._max = SQL("SELECT MAX(notification_id) AS p FROM {}").format(table)
        self._position_of = SQL(
            "SELECT notification_id AS p FROM {} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(table)
        self._changes = SQL(
            "SELECT originator_id, originator_version, notification_id FROM {} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)

    @_reconnect
    def max_position(self) -> int:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._max, prepare=True)
            return cursor.fetchone()["p"] or 0

    @_reconnect
    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._position_of, (aggregate_id, version), prepare=True)
            row = cursor.fetchone()
            return None if row is None else row["p"]

    @_reconnect
    def changes_after(self, position: int, limit: int = CHANGES_PER_QUERY_MAX) -> list[Change]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._changes, (position, limit), prepare=True)
            return [
                Change(row["originator_id"], row["originator_version"], row["notification_id"])
                for row in cursor.fetchall()
            ]


def log_index_for(recorder: ApplicationRecorder) -> LogIndex:
    from eventsourcing.postgres import PostgresApplicationRecorder
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresLogIndex(recorder)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return SQLiteLogIndex(recorder)
    raise TypeError(f"no log index for {type(recorder).__name__}")
