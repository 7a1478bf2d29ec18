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

Writers in several processes decide optimistically and lose a commit when
another process changed an aggregate they decided on. On a hot account
(every fee goes into the one treasury) the loser can lose again and again,
so a writer that keeps losing asks for the *writer turn*: an exclusive
advisory lock held while it refreshes, decides and commits. Every other
commit takes the same lock shared, inside its transaction and before the
table lock, so while a turn is held nobody else commits and the turn's
holder cannot lose. An uncontended commit pays one statement for this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

from application.eventlog.locks import advisory_lock_key, conninfo_of, taking_turns
from application.eventlog.seals import SEALS_TABLE, Seal, SealKeys
from application.write.contention import lock_timeouts_as_contention
from application.write.sealing import begin_rows, seal_rows

logger = logging.getLogger(__name__)

FACTORY_TOPIC = f"{__name__}:LedgerPostgresFactory"


def create_in_turn(datastore: PostgresDatastore, create_table: Callable[[], None]) -> None:
    """Run ``create_table`` holding the schema's DDL advisory lock, which goes
    with a connection of its own (so a crash mid-DDL releases it)."""
    key = advisory_lock_key(f"deals-ledger:{datastore.schema}:event-store-ddl")
    with taking_turns(conninfo_of(datastore), key):
        create_table()


class ColumnarPostgresApplicationRecorder(PostgresApplicationRecorder):
    seal_keys: SealKeys | None = None
    """Set by the application when it has commit seal keys (``application.write.sealing``)."""
    seal_start_at = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._columnar_insert = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        self._turn_key = advisory_lock_key(
            f"deals-ledger:{self.datastore.schema}:{self.events_table_name}:writer-turn")
        self._share_turn = SQL("SELECT pg_advisory_xact_lock_shared({})").format(
            Literal(self._turn_key))
        self._holding_turn = threading.local()

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """Hold the writer turn: no other commit, in any process, until the
        block ends. The commits of this thread inside the block skip the
        shared lock they would otherwise wait on."""
        with lock_timeouts_as_contention(), self.datastore.get_connection() as conn:
            with conn.transaction():  # the lock outlives it: a session lock
                conn.execute(self.lock_table_statements[0])  # SET LOCAL lock_timeout
                conn.execute("SELECT pg_advisory_lock(%s)", (self._turn_key,))
            self._holding_turn.held = True
            try:
                yield
            finally:
                self._holding_turn.held = False
                self._end_turn(conn)

    def _end_turn(self, conn: Any) -> None:
        """Unlock; a connection that cannot is closed, and the server drops
        the lock with it, so a failed unlock never leaves the turn held."""
        import psycopg

        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._turn_key,))
        except psycopg.Error as error:
            logger.warning("writer turn unlock failed (%s); closing its connection",
                           type(error).__name__)
            conn.close()

    @retry((InterfaceError, OperationalError), max_attempts=3, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        with (
            lock_timeouts_as_contention(),
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_stored_events(curs, stored_events, **kwargs)
            positions = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            if self.seal_keys is not None and positions:
                self._seal(curs, stored_events, positions)
            return positions

    def create_table(self) -> None:
        create_in_turn(self.datastore, self._create_tables)

    def _create_tables(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (last_position bigint PRIMARY KEY, "
                "first_position bigint NOT NULL, key_id text NOT NULL, mac bytea NOT NULL)"
            ).format(Identifier(self.datastore.schema), Identifier(SEALS_TABLE)))

    def _seal(self, curs: Any, stored_events: Sequence[StoredEvent],
              positions: Sequence[int]) -> None:
        """The commit's seal, under the table lock this transaction holds
        (``application.write.sealing``)."""
        assert self.seal_keys is not None
        last = self._last_seal(curs)
        head_before = last.last if last is not None else self._head_before(curs, positions)
        self._insert_seals(curs, seal_rows(self.seal_keys, last, head_before, stored_events,
                                           positions, self.seal_start_at))

    def _head_before(self, curs: Any, positions: Sequence[int]) -> int:
        """The log's head before this commit: asked only of a log with no
        seal yet (after a seal, only the start seal's head matters)."""
        curs.execute(SQL("SELECT COALESCE(MAX(notification_id), 0) AS head FROM {} "
                         "WHERE notification_id < %s").format(self._events_table()),
                     (min(positions),))
        return int(curs.fetchone()["head"])

    def begin_sealing(self, head_statement: Any) -> None:
        """Write the start seal now, under the table lock, when the log has
        none (``application.write.sealing.begin_rows``); the head is read
        with the event log's own statement."""
        assert self.seal_keys is not None
        with (lock_timeouts_as_contention(), self.datastore.get_connection() as conn,
              conn.transaction(), conn.cursor() as curs):
            self._lock_table(curs)
            last = self._last_seal(curs)
            curs.execute(head_statement)
            row = curs.fetchone()
            head = next(iter(row.values()), 0) if row else 0
            self._insert_seals(curs, begin_rows(self.seal_keys, last, head or 0,
                                                self.seal_start_at))

    def _seals_table(self) -> Any:
        return SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(SEALS_TABLE))

    def _events_table(self) -> Any:
        return SQL("{}.{}").format(Identifier(self.datastore.schema),
                                   Identifier(self.events_table_name))

    def _last_seal(self, curs: Any) -> Seal | None:
        curs.execute(SQL("SELECT first_position, last_position, key_id, mac FROM {} "
                         "ORDER BY last_position DESC LIMIT 1").format(self._seals_table()))
        row = curs.fetchone()
        return Seal(row["first_position"], row["last_position"], row["key_id"],
                    bytes(row["mac"])) if row else None

    def _insert_seals(self, curs: Any, rows: Sequence[Seal]) -> None:
        if rows:
            curs.executemany(
                SQL("INSERT INTO {} (last_position, first_position, key_id, mac) "
                    "VALUES (%s, %s, %s, %s)").format(self._seals_table()),
                [(s.last, s.first, s.key_id, s.mac) for s in rows])

    def _lock_table(self, curs: Any) -> None:
        """The library's lock timeout and table lock, with the writer turn
        taken shared in between (before the table lock, so a turn's holder
        never waits on a commit that waits on the turn)."""
        set_lock_timeout, lock_table = self.lock_table_statements
        curs.execute(set_lock_timeout, prepare=True)
        if not getattr(self._holding_turn, "held", False):
            curs.execute(self._share_turn, prepare=True)
        curs.execute(lock_table, prepare=True)

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
