"""A PostgreSQL application recorder tuned for large group commits.

The library's recorder sends a batch as one array of a composite type,
which psycopg must escape as text field by field; for a batch of a few
thousand events that escaping costs more than the insert itself. This
subclass sends the same rows as four plain arrays (uuid, bigint, text,
bytea) in binary. Everything else (the table lock that keeps commit order
equal to notification order, NOTIFY, RETURNING notification ids, conflict
errors) is the library's own behaviour.

The library sends its insert in pipeline mode; with a batch of tens of
thousands of events (an 8,000-transfer batch is 24,000 rows) psycopg's
pipeline could wait on the server while the server waited on it, so this
recorder sends the few statements of a commit one after the other in a
plain transaction: a handful of extra round trips per group commit.

Processes starting together (API servers, projection and settlement
workers) each create the tables; PostgreSQL fails concurrent
``CREATE OR REPLACE FUNCTION`` with "tuple concurrently updated" and
concurrent ``CREATE TABLE IF NOT EXISTS`` with a duplicate key in
``pg_type``, so they take turns under an advisory lock: the events table
here, the snapshots table in ``TurnTakingAggregateRecorder``. The factory
``LedgerPostgresFactory`` puts both recorders in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

FACTORY_TOPIC = f"{__name__}:LedgerPostgresFactory"


def create_in_turn(datastore: PostgresDatastore, create_table: Callable[[], None]) -> None:
    """Run ``create_table`` holding the schema's DDL advisory lock, which goes
    with a connection of its own (so a crash mid-DDL releases it)."""
    import psycopg

    name = f"deals-ledger:{datastore.schema}:event-store-ddl"
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    kwargs = dict(datastore.pool.kwargs)  # type: ignore[arg-type]
    conninfo = {k: kwargs[k] for k in ("dbname", "host", "port", "user", "password")}
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        create_table()


class ColumnarPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._columnar_insert = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def create_table(self) -> None:
        create_in_turn(self.datastore, super().create_table)

    @retry((InterfaceError, OperationalError), max_attempts=3, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self._columnar_insert,
            (
                [event.originator_id for event in stored_events],
                [event.originator_version for event in stored_events],
                [event.topic for event in stored_events],
                [event.state for event in stored_events],
            ),
            prepare=True,
        )


class TurnTakingAggregateRecorder(PostgresAggregateRecorder):
    """The library's aggregate recorder (the snapshots table), its DDL in turn."""

    def create_table(self) -> None:
        create_in_turn(self.datastore, super().create_table)


class LedgerPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory with the ledger's two recorders."""

    aggregate_recorder_class = TurnTakingAggregateRecorder
    application_recorder_class = ColumnarPostgresApplicationRecorder
