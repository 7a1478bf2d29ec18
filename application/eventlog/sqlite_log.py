"""The event log's statements on SQLite, where a position is the ``rowid``
of the events table and an aggregate id is stored as 32 hex digits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from application.eventlog.reader import SqlEventLog, Statements
from application.eventlog.seals import SEALS_TABLE

_COLUMNS = "rowid, originator_id, originator_version, topic, state"


class SQLiteEventLog(SqlEventLog):
    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._datastore = recorder.datastore  # type: ignore[attr-defined]
        table = recorder.events_table_name  # type: ignore[attr-defined]
        # the table name is the library's own, not input
        self.statements = Statements(
            head=f"SELECT MAX(rowid) FROM {table}",  # noqa: S608
            read=f"SELECT {_COLUMNS} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",  # noqa: S608
            read_back=(
                f"SELECT {_COLUMNS} FROM {table} WHERE rowid <= ? "  # noqa: S608
                "ORDER BY rowid DESC LIMIT ?"
            ),
            read_aggregate=(
                f"SELECT {_COLUMNS} FROM {table} WHERE originator_id = ? AND rowid > ? "  # noqa: S608
                "ORDER BY rowid LIMIT ?"
            ),
            position_of=(
                f"SELECT rowid FROM {table} "  # noqa: S608
                "WHERE originator_id = ? AND originator_version = ?"
            ),
            latest_position_of=(
                "SELECT MAX(e.rowid) FROM json_each(?) AS r "  # noqa: S608
                f"JOIN {table} AS e ON e.originator_id = json_extract(r.value, '$[0]') "
                "AND e.originator_version = json_extract(r.value, '$[1]')"
            ),
            changes_after=(
                f"SELECT originator_id, originator_version, rowid FROM {table} "  # noqa: S608
                "WHERE rowid > ? ORDER BY rowid LIMIT ?"
            ),
        )

        seals = f"SELECT first_position, last_position, key_id, mac FROM {SEALS_TABLE} "  # noqa: S608
        self.anchor_statement = (
            f"SELECT state FROM {table} WHERE topic = ? ORDER BY rowid DESC LIMIT 1")  # noqa: S608
        self.seal_statements = (
            seals + "WHERE first_position > last_position ORDER BY last_position LIMIT 1",
            seals + "WHERE last_position >= ? ORDER BY last_position LIMIT ?",
            seals + "WHERE last_position < ? ORDER BY last_position DESC LIMIT 1",
        )

    def _rows(self, statement: Any, params: tuple[Any, ...] = ()) -> Sequence[Sequence[Any]]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    def _aggregate_key(self, aggregate_id: UUID) -> Any:
        return aggregate_id.hex

    def _refs_params(self, refs: Sequence[tuple[UUID, int]]) -> tuple[Any, ...]:
        return (json.dumps([[aggregate_id.hex, version] for aggregate_id, version in refs]),)
