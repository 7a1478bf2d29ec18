"""Where the read models live: their tables, the projection's tracking
position and hash-chain checkpoints, on SQLite or PostgreSQL.

The SQL is one text for both databases (upserts, keyset reads, partial
indexes are common ground); what differs is small and kept here: the
placeholder style, table qualification by schema, the blob type, bulk
insert (COPY on PostgreSQL) and the lock that keeps one projector active.

Each store is built on the eventsourcing library's tracking recorder for its
database (whose tracking table holds the projection's position), so a page
of rows, its checkpoint and the tracking position commit in one transaction,
the position moved first by the log's one compare-and-set
(``application.eventlog.tracking``): exactly once, even if the
one-active-projector lock (``application.eventlog.locks``) is lost.

On SQLite the read models have their own file beside the event store
(``readmodels.sqlite``), so projection writes never wait for the event
store's write lock; on PostgreSQL they are tables in the application's
database and schema.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from application.eventlog.locks import (
    AdvisoryLock,
    FileLock,
    OneHolderLock,
    advisory_lock_key,
    taking_turns,
)
from application.eventlog.sql_text import SqlText, table_names
from application.eventlog.tracking import Tracking
from projections.balance_cache import CachedBalance
from projections.hashchain import GENESIS_LINK, Checkpoint
from projections.ledger_fold import FoldState, Keys, PageChanges
from projections.rows import (
    BalanceRow,
    HistoryRow,
    HoldRow,
    PriceRuleDeactivationRow,
    PriceRuleRow,
    TransactionRow,
    WalletRow,
    columns,
    values_of,
)

logger = logging.getLogger(__name__)

READ_MODELS_TRACKING_NAME = "read_models"
READ_MODEL_SCHEMA_VERSION = 6
"""What the rows mean. A change of meaning (a column's values, a new table
that needs the whole log) bumps it, and read models written under another
version are rebuilt from the log at start. 1: the first; 2: the
``transactions.settlement`` column says queued (not pending) for a movement
waiting for the chain, awaiting_capture for a pending hold and not_required
for a voided or expired one, and follows a rejected submission; 3: history
and transactions say who asked (``requested_by``, ``request_id``); 4: so
do the price rules; 5: price rules can be deactivated
(``price_rule_deactivations``); 6: transactions carry the caller's
references (``metadata``, ``external_ref``, found by the latter) and a
reward's ``reward_type``."""
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "balance_history": ("requested_by", "request_id"),
    "transactions": ("requested_by", "request_id", "metadata", "external_ref", "reward_type"),
    "price_rules": ("requested_by", "request_id"),
}
"""Nullable text columns added after their table was first created: a table
of an earlier version gets them before it is rebuilt."""
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS transactions_by_external_ref
  ON {transactions} (external_ref, position) WHERE external_ref IS NOT NULL
"""
"""Indexes on ADDED_COLUMNS: made once the columns exist."""
SCHEMA_VERSION_META = "schema_version"
READ_MODELS_FILE = "readmodels.sqlite"
IDS_PER_IN_LIST_MAX = 500
_UPSERTED = (BalanceRow, TransactionRow, HoldRow, WalletRow)
_INSERTED = (HistoryRow, PriceRuleRow, PriceRuleDeactivationRow)
READ_MODEL_TABLES = tuple(t.TABLE for t in (*_UPSERTED, *_INSERTED))
_TABLES = (*READ_MODEL_TABLES, "hash_checkpoints", "read_model_meta")


_DDL = """
CREATE TABLE IF NOT EXISTS {balances} (
  account_id TEXT PRIMARY KEY, kind TEXT NOT NULL, balance BIGINT NOT NULL,
  held BIGINT NOT NULL, frozen INTEGER NOT NULL, opened_position BIGINT NOT NULL,
  opened_at BIGINT NOT NULL, position BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS balances_by_opened ON {balances} (opened_position);
CREATE TABLE IF NOT EXISTS {balance_history} (
  position {int_pk}, account_id TEXT NOT NULL, transfer_id TEXT NOT NULL,
  change BIGINT NOT NULL, balance_before BIGINT NOT NULL, balance_after BIGINT NOT NULL,
  type TEXT NOT NULL, reason TEXT NOT NULL, created_at BIGINT NOT NULL,
  requested_by TEXT, request_id TEXT);
CREATE INDEX IF NOT EXISTS balance_history_by_account
  ON {balance_history} (account_id, position);
CREATE INDEX IF NOT EXISTS balance_history_by_account_time
  ON {balance_history} (account_id, created_at, position);
CREATE TABLE IF NOT EXISTS {transactions} (
  transfer_id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL,
  destination TEXT NOT NULL, amount BIGINT NOT NULL, reason TEXT NOT NULL,
  phase TEXT NOT NULL, settlement TEXT NOT NULL, status TEXT NOT NULL,
  reversed_by TEXT, reverses TEXT, spender TEXT, expires_at BIGINT, signature TEXT,
  slot BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  position BIGINT NOT NULL, updated_position BIGINT NOT NULL,
  requested_by TEXT, request_id TEXT, metadata TEXT, external_ref TEXT, reward_type TEXT);
CREATE INDEX IF NOT EXISTS transactions_by_source ON {transactions} (source, position);
CREATE INDEX IF NOT EXISTS transactions_by_destination ON {transactions} (destination, position);
CREATE TABLE IF NOT EXISTS {holds} (
  hold_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, status TEXT NOT NULL, placed_position BIGINT NOT NULL,
  placed_at BIGINT NOT NULL, closed_position BIGINT, closed_at BIGINT);
CREATE INDEX IF NOT EXISTS holds_by_account ON {holds} (account_id, status);
CREATE INDEX IF NOT EXISTS holds_due ON {holds} (expires_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS {wallets} (
  wallet_id TEXT PRIMARY KEY, address TEXT NOT NULL, account_id TEXT NOT NULL,
  status TEXT NOT NULL, connected_at BIGINT NOT NULL, disconnected_at BIGINT,
  position BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS wallets_by_account ON {wallets} (account_id);
CREATE TABLE IF NOT EXISTS {price_rules} (
  position {int_pk}, service_type TEXT NOT NULL, token_cost BIGINT NOT NULL,
  valid_from BIGINT, valid_to BIGINT, set_at BIGINT NOT NULL,
  requested_by TEXT, request_id TEXT);
CREATE TABLE IF NOT EXISTS {price_rule_deactivations} (
  position {int_pk}, rule_position BIGINT, service_type TEXT NOT NULL,
  deactivated_at BIGINT NOT NULL, requested_by TEXT, request_id TEXT);
CREATE TABLE IF NOT EXISTS {hash_checkpoints} (
  last_position {int_pk}, first_position BIGINT NOT NULL, head {blob} NOT NULL,
  positions {blob} NOT NULL, digests {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS {read_model_meta} (name TEXT PRIMARY KEY, value BIGINT NOT NULL)
"""


class ReadModelStore:
    """Dialect-neutral part of the store. Subclasses provide ``sql`` (their
    names and placeholders), ``_cursor`` and the lock."""

    kind = "abstract"
    conninfo: dict[str, Any] | None = None
    """PostgreSQL connection parameters (no password in any repr); None for SQLite."""
    sql: SqlText
    tracking_name = READ_MODELS_TRACKING_NAME

    def create_tables(self) -> None:
        raise NotImplementedError

    def ddl(self) -> list[str]:
        return self.sql.statements(_DDL)

    @cached_property
    def tracking(self) -> Tracking:
        """The projection's row in the library's tracking table (its name per
        database and its columns are the library's: a stored contract)."""
        return Tracking(self.sql.names["tracking"], self.tracking_name,
                        name_column="application_name", position_column="notification_id",
                        param=self.sql.param)

    # Reading

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A cursor in one read transaction (a consistent snapshot)."""
        with self._cursor(commit=False) as cursor:
            yield cursor

    def _cursor(self, *, commit: bool) -> Any:
        raise NotImplementedError

    def position(self) -> int:
        with self.read() as cursor:
            return self.tracking.position(cursor)

    @contextmanager
    def page_transaction(self) -> Iterator[Any]:
        """A cursor for a projector's whole page, given as ``cursor=`` to
        ``load``, ``write_page`` and ``cache_entries``; None here: each
        takes a transaction of its own (SQLite has no round trips to save,
        and a read transaction there cannot become the write: another
        projector's commit in between makes it ``database is locked``, not
        the ``TrackingConflict`` that says what happened)."""
        yield None

    @contextmanager
    def _within(self, cursor: Any, *, commit: bool) -> Iterator[Any]:
        """``cursor`` when given (a ``page_transaction``'s), else a
        transaction of its own."""
        if cursor is not None:
            yield cursor
            return
        with self._cursor(commit=commit) as own:
            yield own

    def load(self, keys: Keys, cursor: Any = None) -> FoldState:
        state = FoldState()
        with self._within(cursor, commit=False) as reading:
            state.balances = self._load(reading, BalanceRow, keys.accounts)
            state.transactions = self._load(reading, TransactionRow, keys.transfers)
            state.holds = self._load(reading, HoldRow, keys.holds)
            state.wallets = self._load(reading, WalletRow, keys.wallets)
        return state

    def _load(self, cursor: Any, row_type: Any, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        rows: dict[str, Any] = {}
        cols = ", ".join(columns(row_type))
        for start in range(0, len(keys), IDS_PER_IN_LIST_MAX):
            chunk = keys[start:start + IDS_PER_IN_LIST_MAX]
            marks = ", ".join("?" * len(chunk))
            cursor.execute(self.sql(
                f"SELECT {cols} FROM {{{row_type.TABLE}}} "  # noqa: S608
                f"WHERE {row_type.KEY[0]} IN ({marks})"
            ), chunk)
            for values in cursor.fetchall():
                row = row_type(*values)
                rows[row.key] = row
        return rows

    def all_rows(self, cursor: Any, row_type: Any, order: str | None = None) -> Iterator[Any]:
        """Every row of a table, in bounded batches (for audit and tests)."""
        for values in self.all_values(cursor, row_type):
            yield row_type(*values)

    def all_values(self, cursor: Any, row_type: Any) -> Iterator[tuple[Any, ...]]:
        """Every row of a table as a tuple of its ``columns``, in key order
        and bounded batches (the audit compares them with ``values_of``)."""
        cols = ", ".join(columns(row_type))
        key = row_type.KEY[0]
        at = columns(row_type).index(key)
        last: Any = None
        while True:
            where = "" if last is None else f"WHERE {key} > ? "
            cursor.execute(self.sql(
                f"SELECT {cols} FROM {{{row_type.TABLE}}} {where}ORDER BY {key} LIMIT 5000"  # noqa: S608
            ), () if last is None else (last,))
            batch = [tuple(values) for values in cursor.fetchall()]
            if not batch:
                return
            yield from batch
            last = batch[-1][at]

    def history_between(self, cursor: Any, after: int, upto: int) -> list[HistoryRow]:
        return [HistoryRow(*values) for values in self.history_values_between(cursor, after, upto)]

    def history_values_between(self, cursor: Any, after: int, upto: int
                               ) -> list[tuple[Any, ...]]:
        """The history rows of positions ``after < p <= upto`` as tuples of
        their ``columns``, by position."""
        cols = ", ".join(columns(HistoryRow))
        cursor.execute(self.sql(
            f"SELECT {cols} FROM {{balance_history}} WHERE position > ? AND position <= ? "  # noqa: S608
            "ORDER BY position"
        ), (after, upto))
        return [tuple(values) for values in cursor.fetchall()]

    # Balance cache entries: each read in one query, so its fields agree.

    _CACHE_ENTRY = (
        "SELECT b.account_id, b.balance, b.held, b.position, "
        "(SELECT MIN(h.expires_at) FROM {holds} h "
        "WHERE h.account_id = b.account_id AND h.status = 'pending') FROM {balances} b "
    )

    def cache_entries(self, account_ids: Sequence[str], cursor: Any = None
                      ) -> list[CachedBalance]:
        entries: list[CachedBalance] = []
        with self._within(cursor, commit=False) as reading:
            for start in range(0, len(account_ids), IDS_PER_IN_LIST_MAX):
                chunk = list(account_ids[start:start + IDS_PER_IN_LIST_MAX])
                marks = ", ".join("?" * len(chunk))
                reading.execute(self.sql(self._CACHE_ENTRY + f"WHERE b.account_id IN ({marks})"),
                                chunk)
                entries.extend(CachedBalance(*row) for row in reading.fetchall())
        return entries

    def cache_entries_changed_after(
        self, position: int, after_account: str, limit: int
    ) -> list[CachedBalance]:
        with self.read() as cursor:
            cursor.execute(self.sql(
                self._CACHE_ENTRY + "WHERE b.position > ? AND b.account_id > ? "
                "ORDER BY b.account_id LIMIT ?"
            ), (position, after_account, limit))
            return [CachedBalance(*row) for row in cursor.fetchall()]

    def holds_outstanding(self) -> tuple[int, int]:
        """Count and amount of pending holds."""
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM {holds} WHERE status = 'pending'"
            ))
            count, amount = cursor.fetchone()
        return int(count), int(amount)

    # Hash chain checkpoints

    def chain_head(self) -> tuple[int, bytes]:
        with self.read() as cursor:
            cursor.execute(self.sql(
                "SELECT last_position, head FROM {hash_checkpoints} "
                "ORDER BY last_position DESC LIMIT 1"
            ))
            row = cursor.fetchone()
        return (0, GENESIS_LINK) if row is None else (int(row[0]), bytes(row[1]))

    def checkpoints(self, cursor: Any, upto: int | None = None) -> Iterator[Checkpoint]:
        last = 0
        while True:
            cursor.execute(self.sql(
                "SELECT first_position, last_position, head, positions, digests "
                "FROM {hash_checkpoints} WHERE last_position > ? ORDER BY last_position LIMIT 200"
            ), (last,))
            batch = cursor.fetchall()
            if not batch:
                return
            for first, last_position, head, positions, digests in batch:
                if upto is not None and first > upto:
                    return
                yield Checkpoint(
                    first, last_position, bytes(head), bytes(positions), bytes(digests)
                )
                last = last_position

    def checkpoints_newest_first(self, upto: int | None = None
                                 ) -> Iterator[tuple[Checkpoint, int, bytes]]:
        """Each checkpoint at or below ``upto`` (all: None), newest first,
        with the last position and chain head of the one before it (0 and
        the genesis link for the first)."""
        below = (1 << 62) if upto is None else upto + 1
        while True:
            with self.read() as cursor:
                cursor.execute(self.sql(
                    "SELECT first_position, last_position, head, positions, digests "
                    "FROM {hash_checkpoints} WHERE last_position < ? "
                    "ORDER BY last_position DESC LIMIT 201"
                ), (below,))
                batch = [Checkpoint(first, last, bytes(head), bytes(positions), bytes(digests))
                         for first, last, head, positions, digests in cursor.fetchall()]
            if not batch:
                return
            for checkpoint, before in zip(batch, batch[1:], strict=False):
                yield checkpoint, before.last_position, before.head
            if len(batch) < 201:
                yield batch[-1], 0, GENESIS_LINK
                return
            below = batch[-2].last_position

    def last_checkpointed(self, cursor: Any) -> int:
        cursor.execute(self.sql("SELECT MAX(last_position) FROM {hash_checkpoints}"))
        row = cursor.fetchone()
        return int(row[0] or 0) if row else 0

    # Meta values (e.g. where the Redis cache must be resynchronised from)

    def meta(self, name: str) -> int | None:
        with self.read() as cursor:
            cursor.execute(self.sql("SELECT value FROM {read_model_meta} WHERE name = ?"), (name,))
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def set_meta(self, name: str, value: int | None) -> None:
        with self._cursor(commit=True) as cursor:
            if value is None:
                cursor.execute(self.sql("DELETE FROM {read_model_meta} WHERE name = ?"), (name,))
            else:
                cursor.execute(self.sql(
                    "INSERT INTO {read_model_meta} (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ), (name, value))

    # Writing

    def write_page(
        self, previous: int, changes: PageChanges, checkpoint: Checkpoint | None,
        before_commit: Callable[[], None] | None = None, cursor: Any = None,
    ) -> None:
        """Apply one page's changes and move tracking from ``previous`` to
        the page's last position, in one transaction (``cursor``'s, when
        given: a ``page_transaction``'s, committed by it)."""
        with self._within(cursor, commit=True) as cursor:
            self.tracking.advance(cursor, previous, changes.last_position)
            for row_type, rows in (
                (BalanceRow, changes.balances), (TransactionRow, changes.transactions),
                (HoldRow, changes.holds), (WalletRow, changes.wallets),
            ):
                if rows:
                    cursor.executemany(self._upsert_sql(row_type), [
                        values_of(row_type)(row) for row in rows.values()
                    ])
            if changes.history:
                self._insert_many(cursor, HistoryRow, changes.history)
            if changes.price_rules:
                self._insert_many(cursor, PriceRuleRow, changes.price_rules)
            if changes.price_rule_deactivations:
                self._insert_many(cursor, PriceRuleDeactivationRow,
                                  changes.price_rule_deactivations)
            if checkpoint is not None:
                cursor.execute(self.sql(
                    "INSERT INTO {hash_checkpoints} (last_position, first_position, head, "
                    "positions, digests) VALUES (?, ?, ?, ?, ?)"
                ), (checkpoint.last_position, checkpoint.first_position, checkpoint.head,
                    checkpoint.positions, checkpoint.digests))
            if before_commit is not None:
                before_commit()

    def _upsert_sql(self, row_type: Any) -> str:
        cols = columns(row_type)
        key = row_type.KEY[0]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
        return self.sql(  # table and column names are the row classes' own
            f"INSERT INTO {{{row_type.TABLE}}} ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(cols))}) ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )

    def _insert_many(self, cursor: Any, row_type: Any, rows: Sequence[Any]) -> None:
        cols = columns(row_type)
        cursor.executemany(self.sql(
            f"INSERT INTO {{{row_type.TABLE}}} ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(cols))})"
        ), [values_of(row_type)(row) for row in rows])

    def reset(self, *, checkpoints_after: int | None = None) -> None:
        """Empty every read model and move tracking back to 0 (for a rebuild).
        The hash-chain checkpoints stay: they are evidence, not a model;
        but those past ``checkpoints_after`` (a timeline the restored log
        lost) go in the same transaction."""
        with self._cursor(commit=True) as cursor:
            if checkpoints_after is not None:
                cursor.execute(self.sql("DELETE FROM {hash_checkpoints} WHERE last_position > ?"),
                               (checkpoints_after,))
            self._reset(cursor)

    def _reset(self, cursor: Any) -> None:
        for table in READ_MODEL_TABLES:
            cursor.execute(self._truncate(table))
        self.tracking.reset(cursor)

    def _rebuild_if_written_by_another_version(self) -> None:
        """Read models of another ``READ_MODEL_SCHEMA_VERSION`` are emptied
        (in one transaction with the new version mark) and the projector
        rebuilds them from the log. Called under the DDL lock, so processes
        starting together empty them once."""
        written = self.meta(SCHEMA_VERSION_META)
        if written == READ_MODEL_SCHEMA_VERSION:
            return
        if written is not None or self.position() > 0:
            logger.warning("read models were written by schema version %s, this is %d: "
                           "rebuilding them from the event log", written or 1,
                           READ_MODEL_SCHEMA_VERSION)
        with self._cursor(commit=True) as cursor:
            self._add_missing_columns(cursor)
            for statement in self.sql.statements(_ADDED_INDEXES):
                cursor.execute(statement)
            self._reset(cursor)
            cursor.execute(self.sql(
                "INSERT INTO {read_model_meta} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ), (SCHEMA_VERSION_META, READ_MODEL_SCHEMA_VERSION))

    def _add_missing_columns(self, cursor: Any) -> None:
        """``CREATE TABLE IF NOT EXISTS`` leaves a table of an earlier
        version as it was: add the columns it lacks."""
        for table, added in ADDED_COLUMNS.items():
            present = self._column_names(cursor, table)
            for column in added:
                if column not in present:
                    cursor.execute(self.sql(f"ALTER TABLE {{{table}}} ADD COLUMN {column} TEXT"))

    def _column_names(self, cursor: Any, table: str) -> set[str]:
        raise NotImplementedError

    def _truncate(self, table: str) -> str:
        return self.sql(f"DELETE FROM {{{table}}}")  # noqa: S608

    # Locks and lifecycle

    def projection_lock(self) -> OneHolderLock:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# SQLite


class _SQLiteRecorder(SQLiteTrackingRecorder):
    def __init__(self, datastore: SQLiteDatastore, store: SQLiteReadModelStore) -> None:
        self._store = store
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self._store.ddl()]


class SQLiteReadModelStore(ReadModelStore):
    kind = "sqlite"

    def __init__(self, path: Path, lock_timeout_s: int = 10) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sql = SqlText({
            **table_names(_TABLES, None), "tracking": "tracking",
            "int_pk": "INTEGER PRIMARY KEY", "blob": "BLOB",
        })
        self.datastore = SQLiteDatastore(str(self.path), lock_timeout=lock_timeout_s)
        self.recorder = _SQLiteRecorder(self.datastore, self)

    def _column_names(self, cursor: Any, table: str) -> set[str]:
        cursor.execute(f"PRAGMA table_info({self.sql.names[table]})")
        return {row[1] for row in cursor.fetchall()}

    def create_tables(self) -> None:
        """Create what is missing; processes starting together take turns
        (the library's tracking-table check must see the other's commit)."""
        fd = os.open(self.path.with_suffix(".ddl.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.recorder.create_table()
            with self._cursor(commit=True) as cursor:
                self.tracking.seed(cursor)
            self._rebuild_if_written_by_another_version()
        finally:
            os.close(fd)  # releases the lock

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def projection_lock(self) -> OneHolderLock:
        return FileLock(self.path.with_suffix(".lock"))

    def close(self) -> None:
        self.datastore.close()


# PostgreSQL


class _PostgresRecorder(PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore, store: PostgresReadModelStore) -> None:
        super().__init__(datastore, tracking_table_name="read_model_tracking")
        from psycopg.sql import SQL, Composed

        self.sql_create_statements.extend(Composed([SQL(s)]) for s in store.ddl())


class PostgresReadModelStore(ReadModelStore):
    kind = "postgres"

    def __init__(self, env: Mapping[str, str], pool_size: int = 4) -> None:
        self.schema = env.get("POSTGRES_SCHEMA") or "public"
        self.conninfo: dict[str, Any] = {
            "dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"],
            "port": env.get("POSTGRES_PORT", "5432"), "user": env["POSTGRES_USER"],
            "password": env.get("POSTGRES_PASSWORD", ""),
        }
        self.sql = SqlText({
            **table_names(_TABLES, self.schema),
            "tracking": table_names(["read_model_tracking"], self.schema)["read_model_tracking"],
            "int_pk": "BIGINT PRIMARY KEY", "blob": "BYTEA",
        }, param="%s")
        self.datastore = PostgresDatastore(
            self.conninfo["dbname"], self.conninfo["host"], self.conninfo["port"],
            self.conninfo["user"], self.conninfo["password"], schema=self.schema,
            pool_size=pool_size, max_overflow=pool_size * 2,
            connect_timeout=float(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
            lock_timeout=int(env.get("POSTGRES_LOCK_TIMEOUT", "0") or 0),
            pre_ping=True,
        )
        self.recorder = _PostgresRecorder(self.datastore, self)

    def create_tables(self) -> None:
        """Create what is missing. Concurrent ``CREATE ... IF NOT EXISTS`` can
        deadlock on PostgreSQL, so processes starting together take turns
        under an advisory lock held on a connection of its own."""
        with taking_turns(self.conninfo, advisory_lock_key(
            f"deals-ledger:{self.schema}:read-model-ddl"
        )):
            self.recorder.create_table()
            with self._cursor(commit=True) as cursor:
                self.tracking.seed(cursor)
            self._rebuild_if_written_by_another_version()

    @contextmanager
    def _cursor(self, *, commit: bool) -> Iterator[Any]:
        """A read is one REPEATABLE READ, READ ONLY transaction (said in its
        BEGIN, no extra round trip), so every statement of a query sees the
        same state and the tracking position read with the rows is the
        position they reflect."""
        from psycopg import IsolationLevel
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn:
            if not commit:
                conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
            try:
                with conn.transaction(force_rollback=not commit):
                    yield conn.cursor(row_factory=tuple_row)
            finally:
                if not commit and not conn.closed:
                    conn.isolation_level, conn.read_only = None, None

    @contextmanager
    def page_transaction(self) -> Iterator[Any]:
        """One write transaction for the page's load, write and cache
        entries: apart, each cost a pooled connection's pre-ping, a BEGIN
        and a COMMIT or ROLLBACK, most of a small page's round trips.
        Loading inside the write changes nothing the tracking
        compare-and-set does not decide already: a page another projector
        committed since makes ``write_page`` raise ``TrackingConflict``
        (its UPDATE waits for that commit, then finds the position moved)."""
        with self._cursor(commit=True) as cursor:
            yield cursor

    def position(self) -> int:
        """One statement on an autocommit connection (no BEGIN/ROLLBACK):
        asked often, by every waiting read's follower."""
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            return self.tracking.position(cur)

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A read-only REPEATABLE READ transaction: every query sees one state
        (what every read is; kept for the audit's reader)."""
        with self._cursor(commit=False) as cursor:
            yield cursor

    def _insert_many(self, cursor: Any, row_type: Any, rows: Sequence[Any]) -> None:
        cols = columns(row_type)
        getter = values_of(row_type)
        statement = self.sql(f"COPY {{{row_type.TABLE}}} ({', '.join(cols)}) FROM STDIN")
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(getter(row))

    def _column_names(self, cursor: Any, table: str) -> set[str]:
        cursor.execute(self.sql("SELECT column_name FROM information_schema.columns "
                                "WHERE table_schema = ? AND table_name = ?"), (self.schema, table))
        return {row[0] for row in cursor.fetchall()}

    def _truncate(self, table: str) -> str:
        return self.sql(f"TRUNCATE {{{table}}}")

    def projection_lock(self) -> OneHolderLock:
        return AdvisoryLock(self.conninfo,
                            advisory_lock_key(f"deals-ledger:{self.schema}:{self.tracking_name}"))

    def close(self) -> None:
        self.datastore.close()


def open_store(env: Mapping[str, str]) -> ReadModelStore:
    """The read-model store beside the event store the eventsourcing ``env``
    describes, with its tables created."""
    store: ReadModelStore
    if "POSTGRES_DBNAME" in env:
        store = PostgresReadModelStore(env)
    elif "SQLITE_DBNAME" in env:
        store = SQLiteReadModelStore(Path(env["SQLITE_DBNAME"]).parent / READ_MODELS_FILE)
    else:
        raise ValueError(f"no read-model store for persistence module "
                         f"{env.get('PERSISTENCE_MODULE')!r}")
    store.create_tables()
    return store
