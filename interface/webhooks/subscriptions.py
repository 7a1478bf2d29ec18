"""Webhook subscriptions and their delivery log, in tables of their own.

Not ledger events: a subscription is configuration, not a fact of the
ledger, and it holds a signing secret, which must be deletable and never
enter the immutable, anchored log that auditors read and proofs cover. So
the tables live beside the event store (SQLite: ``webhooks.sqlite`` in the
data dir; PostgreSQL: the application's schema, through its pool) and are
owned by this package, the only one that POSTs to receivers.

Each subscription keeps ``delivered_position``: every event of its types
at or before it was acknowledged by the receiver. It is moved by
compare-and-set, so a replay (which moves it back) always wins over a
delivery finishing at the same moment.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from application.eventlog.locks import HASHTEXT_DDL_LOCK_SQL, webhooks_ddl_lock_name
from application.eventlog.sql_text import SqlText, sqlite_write, table_names

WEBHOOKS_FILE = "webhooks.sqlite"
DELIVERIES_KEPT_MAX = 1000
"""Delivery log rows kept per subscription (older ones are pruned)."""
_TABLES = ("webhook_subscriptions", "webhook_deliveries")
_DDL = """
CREATE TABLE IF NOT EXISTS {webhook_subscriptions} (
  subscription_id TEXT PRIMARY KEY, url TEXT NOT NULL, types TEXT NOT NULL,
  secret TEXT NOT NULL, delivered_position BIGINT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {webhook_deliveries} (
  seq {serial}, subscription_id TEXT NOT NULL, event_id TEXT NOT NULL,
  position BIGINT NOT NULL, event_type TEXT NOT NULL, attempt INTEGER NOT NULL,
  outcome TEXT NOT NULL, status INTEGER, error TEXT, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_subscription
  ON {webhook_deliveries} (subscription_id, seq)
"""
_SELECT_SUBSCRIPTIONS = ("SELECT subscription_id, url, types, secret, delivered_position, created_at "
                         "FROM {webhook_subscriptions} ")


@dataclass(frozen=True)
class Subscription:
    subscription_id: UUID
    url: str
    types: frozenset[str] | None
    """None: every type."""
    secret: str = field(repr=False)
    delivered_position: int
    created_at: str

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> Subscription:
        types = frozenset(row[2].split(",")) if row[2] else None
        return cls(UUID(row[0]), row[1], types, row[3], int(row[4]), row[5])


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event (``outcome``: delivered or failed)."""

    subscription_id: UUID
    event_id: str
    position: int
    event_type: str
    attempt: int
    outcome: str
    status: int | None
    error: str | None
    at: str


class WebhookStore:
    """Dialect-neutral statements; subclasses open cursors (``?`` placeholders)."""

    sql: SqlText

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _create(self) -> None:
        with self.transaction() as cursor:
            for statement in self.sql.statements(_DDL):
                cursor.execute(statement)

    def add(self, subscription: Subscription) -> None:
        s = subscription
        with self.transaction() as cursor:
            cursor.execute(self.sql("INSERT INTO {webhook_subscriptions} (subscription_id, url, "
                                    "types, secret, delivered_position, created_at) "
                                    "VALUES (?, ?, ?, ?, ?, ?)"),
                           (str(s.subscription_id), s.url, ",".join(sorted(s.types or ())),
                            s.secret, s.delivered_position, s.created_at))

    def remove(self, subscription_id: UUID) -> bool:
        with self.transaction() as cursor:
            cursor.execute(self.sql("DELETE FROM {webhook_deliveries} WHERE subscription_id = ?"),
                           (str(subscription_id),))
            cursor.execute(self.sql("DELETE FROM {webhook_subscriptions} WHERE subscription_id = ?"),
                           (str(subscription_id),))
            return bool(cursor.rowcount)

    def all(self) -> list[Subscription]:
        with self.transaction() as cursor:
            cursor.execute(self.sql(_SELECT_SUBSCRIPTIONS + "ORDER BY created_at, subscription_id"))
            return [Subscription.of_row(row) for row in cursor.fetchall()]

    def get(self, subscription_id: UUID) -> Subscription | None:
        with self.transaction() as cursor:
            cursor.execute(self.sql(_SELECT_SUBSCRIPTIONS + "WHERE subscription_id = ?"),
                           (str(subscription_id),))
            row = cursor.fetchone()
        return None if row is None else Subscription.of_row(row)

    def advance(self, subscription_id: UUID, previous: int, position: int) -> bool:
        """Move ``delivered_position`` from ``previous`` to ``position``;
        False when it had moved meanwhile (a replay, a deleted subscription)."""
        with self.transaction() as cursor:
            cursor.execute(self.sql("UPDATE {webhook_subscriptions} SET delivered_position = ? "
                                    "WHERE subscription_id = ? AND delivered_position = ?"),
                           (position, str(subscription_id), previous))
            return cursor.rowcount == 1

    def rewind(self, subscription_id: UUID, position: int) -> bool:
        with self.transaction() as cursor:
            cursor.execute(self.sql("UPDATE {webhook_subscriptions} SET delivered_position = ? "
                                    "WHERE subscription_id = ?"), (position, str(subscription_id)))
            return cursor.rowcount == 1

    def record(self, delivery: Delivery) -> None:
        d = delivery
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "INSERT INTO {webhook_deliveries} (subscription_id, event_id, position, event_type, "
                "attempt, outcome, status, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (str(d.subscription_id), d.event_id, d.position, d.event_type, d.attempt,
                 d.outcome, d.status, d.error, d.at))
            cursor.execute(self.sql(
                "DELETE FROM {webhook_deliveries} WHERE subscription_id = ? AND seq <= "
                "(SELECT MAX(seq) FROM {webhook_deliveries} WHERE subscription_id = ?) - ?"),
                (str(d.subscription_id), str(d.subscription_id), DELIVERIES_KEPT_MAX))

    def deliveries(self, subscription_id: UUID, limit: int) -> list[Delivery]:
        """The latest attempts, newest first."""
        with self.transaction() as cursor:
            cursor.execute(self.sql(
                "SELECT subscription_id, event_id, position, event_type, attempt, outcome, status, "
                "error, at FROM {webhook_deliveries} WHERE subscription_id = ? "
                "ORDER BY seq DESC LIMIT ?"), (str(subscription_id), limit))
            return [Delivery(UUID(row[0]), *row[1:]) for row in cursor.fetchall()]

    def close(self) -> None:
        pass


class SQLiteWebhookStore(WebhookStore):
    def __init__(self, path: Path) -> None:
        self.sql = SqlText({**table_names(_TABLES, None), "serial": "INTEGER PRIMARY KEY"})
        self.path = path
        self._lock = threading.RLock()
        path.touch(mode=0o600, exist_ok=True)  # it holds signing secrets; SQLite's
        path.chmod(0o600)  # -wal and -shm files take the database file's mode
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._create()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with sqlite_write(self._db, self._lock) as cursor:
            yield cursor

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresWebhookStore(WebhookStore):
    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.sql = SqlText({**table_names(_TABLES, datastore.schema), "serial": "BIGSERIAL PRIMARY KEY"},
                           param="%s")
        with self.transaction() as cursor:  # serve processes starting together take turns
            cursor.execute(self.sql(HASHTEXT_DDL_LOCK_SQL), (webhooks_ddl_lock_name(datastore.schema),))
            for statement in self.sql.statements(_DDL):
                cursor.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        from psycopg.rows import tuple_row

        with self.datastore.get_connection() as conn, conn.transaction():
            yield conn.cursor(row_factory=tuple_row)


def open_webhook_store(recorder: Any) -> WebhookStore:
    """The store beside the application's event store (``app.recorder``)."""
    from eventsourcing.postgres import PostgresApplicationRecorder

    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresWebhookStore(recorder.datastore)
    return SQLiteWebhookStore(Path(recorder.datastore.pool.db_name).parent / WEBHOOKS_FILE)
