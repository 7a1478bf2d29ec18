"""The event log's statements on PostgreSQL, where a position is the
``notification_id`` and an aggregate id a ``uuid``.

Each question is one statement on an autocommit connection of the
application's pool (no BEGIN/ROLLBACK round trips), prepared once per
connection, with rows as tuples (no dict per row)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from application.eventlog.reader import SqlEventLog, Statements
from application.eventlog.seals import SEALS_TABLE


class PostgresEventLog(SqlEventLog):
    def __init__(self, recorder: ApplicationRecorder) -> None:
        from psycopg.sql import SQL, Identifier

        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        self._pinned = threading.local()
        table = SQL("{}.{}").format(
            Identifier(self._datastore.schema),
            Identifier(recorder.events_table_name),  # type: ignore[attr-defined]
        )
        events = SQL(
            "SELECT notification_id, replace(originator_id::text, '-', ''), "
            "originator_version, topic, state FROM {} "
        ).format(table)
        self.statements = Statements(
            head=SQL("SELECT MAX(notification_id) FROM {}").format(table),
            read=events + SQL("WHERE notification_id > %s ORDER BY notification_id LIMIT %s"),
            read_back=events + SQL(
                "WHERE notification_id <= %s ORDER BY notification_id DESC LIMIT %s"
            ),
            read_aggregate=events + SQL(
                "WHERE originator_id = %s AND notification_id > %s "
                "ORDER BY notification_id LIMIT %s"
            ),
            position_of=SQL(
                "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
            ).format(table),
            latest_position_of=SQL(
                "SELECT MAX(e.notification_id) FROM unnest(%s::uuid[], %s::bigint[]) AS r(id, v) "
                "JOIN {} AS e ON e.originator_id = r.id AND e.originator_version = r.v"
            ).format(table),
            changes_after=SQL(
                "SELECT originator_id, originator_version, notification_id FROM {} "
                "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(table),
        )

        seals = SQL("SELECT first_position, last_position, key_id, mac FROM {}.{} ").format(
            Identifier(self._datastore.schema), Identifier(SEALS_TABLE))
        self.anchor_statement = SQL(
            "SELECT state FROM {} WHERE topic = %s ORDER BY notification_id DESC LIMIT 1"
        ).format(table)
        self.seal_statements = (
            seals + SQL("WHERE first_position > last_position ORDER BY last_position LIMIT 1"),
            seals + SQL("WHERE last_position >= %s ORDER BY last_position LIMIT %s"),
            seals + SQL("WHERE last_position < %s ORDER BY last_position DESC LIMIT 1"),
        )

    @contextmanager
    def session(self) -> Iterator[None]:
        """One pooled connection for this thread's questions inside: the pool
        pre-pings a connection each time it is taken (``POSTGRES_PRE_PING``),
        a round trip as dear as the question, and the projector asks 4-6 a
        page. A failure inside surfaces as psycopg's own error (the caller,
        the projector, retries its whole page on a fresh connection); the
        pool replaces a broken connection when the session gives it back."""
        if getattr(self._pinned, "conn", None) is not None:
            yield  # nested: the outer session's connection
            return
        with self._datastore.get_connection() as conn:
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    def _rows(self, statement: Any, params: tuple[Any, ...] = ()) -> Sequence[Sequence[Any]]:
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:
            return _ask(pinned, statement, params)
        with self._datastore.get_connection() as conn:
            return _ask(conn, statement, params)

    def _aggregate_key(self, aggregate_id: UUID) -> Any:
        return aggregate_id

    def _refs_params(self, refs: Sequence[tuple[UUID, int]]) -> tuple[Any, ...]:
        return ([aggregate_id for aggregate_id, _ in refs], [version for _, version in refs])


def _ask(conn: Any, statement: Any, params: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
    """One prepared statement's rows, as tuples."""
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(statement, params, prepare=True)
        return cur.fetchall()
