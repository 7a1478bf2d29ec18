"""Whether the configured store holds a ledger, checked before anything
opens it, and the PostgreSQL schema created for the commands that create
a ledger.

Only ``serve`` and ``init`` create a ledger. The commands that read one
(``replay``, ``project``, ``settle``, ``reconcile``) refuse a data dir or
schema without one: opening the store would create empty tables, and an
audit of an empty ledger run from the wrong folder would report "clean".
A ledger exists when its event log holds at least one event (genesis).
Messages name the setting to fix and never a password.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

from application.write.event_store import LedgerApplication
from interface.wiring.settings import Settings

SQLITE_EVENTS_TABLE = "stored_events"
SQLITE_EVENTS_FILE = "events.sqlite"
POSTGRES_EVENTS_TABLE = f"{LedgerApplication.name.lower()}_events"
"""eventsourcing's PostgreSQL factory names the table after the application."""


class NoLedger(Exception):
    """The configured store holds no ledger."""


class SchemaUnavailable(Exception):
    """The PostgreSQL schema is missing and this role cannot create it."""


class StoreUnreachable(Exception):
    """PostgreSQL does not answer at DEALS_DATABASE_URL (an outage may pass)."""


def require_reachable_store(settings: Settings) -> None:
    """Raise StoreUnreachable naming host, port, database and the setting
    (never the password) when PostgreSQL cannot be reached: the pool's own
    error says only that no connection came within its timeout."""
    if not settings.uses_postgres:
        return
    import psycopg

    assert settings.database_url is not None
    try:
        psycopg.connect(settings.database_url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        raise StoreUnreachable(
            f"cannot reach PostgreSQL: {_database(settings)} (DEALS_DATABASE_URL): "
            f"{_cause(error, settings.database_url)}") from None


def _cause(error: Exception, url: str) -> str:
    """The driver's reason on one line, with the password scrubbed should
    it ever be quoted."""
    password = urlsplit(url).password
    text = " ".join(str(error).split()) or type(error).__name__
    return text.replace(password, "***") if password else text


def require_ledger(settings: Settings) -> None:
    """Raise NoLedger, naming where it looked, unless a ledger is there."""
    if settings.uses_postgres:
        _require_postgres_ledger(settings)
    else:
        _require_sqlite_ledger(settings)


def _require_sqlite_ledger(settings: Settings) -> None:
    path = settings.data_dir / SQLITE_EVENTS_FILE
    hint = ("set DEALS_DATA_DIR to the ledger's data dir (or run where ./var is), "
            "or create one with `deals-ledger init`")
    if not path.is_file():
        raise NoLedger(f"no ledger in {settings.data_dir.resolve()} (no {SQLITE_EVENTS_FILE}): "
                       f"{hint}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = connection.execute(f"SELECT 1 FROM {SQLITE_EVENTS_TABLE} LIMIT 1").fetchone()  # noqa: S608
    except sqlite3.OperationalError:
        found = None
    finally:
        connection.close()
    if found is None:
        raise NoLedger(f"{path.resolve()} holds no ledger (its event log is empty): {hint}")


def _require_postgres_ledger(settings: Settings) -> None:
    import psycopg

    assert settings.database_url is not None
    where = _described(settings)
    table = _qualified(settings.postgres_schema)
    with psycopg.connect(settings.database_url, connect_timeout=5) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        found = exists is not None and exists[0] is not None and connection.execute(
            f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None  # noqa: S608
    if not found:
        raise NoLedger(f"no ledger in {where}: check DEALS_DATABASE_URL and "
                       "DEALS_POSTGRES_SCHEMA, or create one with `deals-ledger init`")


def ensure_schema(settings: Settings) -> None:
    """Create DEALS_POSTGRES_SCHEMA if it is missing (serve, init); a role
    that may not create it gets one line naming the setting."""
    if not settings.uses_postgres or not settings.postgres_schema:
        return
    import psycopg
    from psycopg import sql

    assert settings.database_url is not None
    schema = settings.postgres_schema
    with psycopg.connect(settings.database_url, connect_timeout=5, autocommit=True) as connection:
        present = connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if present is not None:
            return
        try:
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema)))
        except psycopg.errors.InsufficientPrivilege:
            raise SchemaUnavailable(
                f"DEALS_POSTGRES_SCHEMA: schema {schema!r} does not exist in "
                f"{_database(settings)} and this role may not create it: create it "
                "(CREATE SCHEMA ... AUTHORIZATION <role>) or name an existing one"
            ) from None


def _qualified(schema: str | None) -> str:
    quoted = '"' + schema.replace('"', '""') + '"' if schema else None
    return f"{quoted}.{POSTGRES_EVENTS_TABLE}" if quoted else POSTGRES_EVENTS_TABLE


def _described(settings: Settings) -> str:
    """The schema and its database in words, without credentials."""
    schema = settings.postgres_schema
    return f"{f'schema {schema!r}' if schema else 'the default schema'} of {_database(settings)}"


def _database(settings: Settings) -> str:
    """The database, host and port in words, without credentials."""
    parts = urlsplit(settings.database_url or "")
    database = parts.path.lstrip("/") or "postgres"
    return f"database {database!r} on {parts.hostname}:{parts.port or 5432}"
