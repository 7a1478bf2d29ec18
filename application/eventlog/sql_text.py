"""SQL written once for SQLite and PostgreSQL, as each log consumer's store
writes it: table names in braces (``{balances}``), ``?`` placeholders.

``SqlText`` fills in the names (schema-qualified on PostgreSQL) and, where
the driver wants them, ``%s`` placeholders, and remembers each statement it
made (the same few statements run for every page). ``statements`` splits a
DDL script. Both stores of derived tables (the read models, the settlement
store) use it, so what differs between the databases is said once.
``sqlite_write`` is the write transaction of every store of our own tables
on SQLite (the settlement store, the webhook subscriptions).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


def quote_identifier(identifier: str) -> str:
    """A PostgreSQL identifier, quoted (a schema named by the operator)."""
    return '"' + identifier.replace('"', '""') + '"'


def table_names(tables: Iterable[str], schema: str | None) -> dict[str, str]:
    """Each table's name as SQL writes it: bare on SQLite, in the schema on PostgreSQL."""
    prefix = "" if schema is None else quote_identifier(schema) + "."
    return {table: prefix + table for table in tables}


class SqlText:
    """One store's statements: names filled in, placeholders the driver's."""

    def __init__(self, names: dict[str, str], *, param: str = "?") -> None:
        self.names = names
        self.param = param
        self._made: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        made = self._made.get(text)
        if made is None:
            made = text.format(**self.names)
            if self.param != "?":
                made = made.replace("?", self.param)
            self._made[text] = made
        return made

    def statements(self, script: str) -> list[str]:
        """A DDL script's statements, names filled in."""
        return [statement.strip() for statement in self(script).split(";") if statement.strip()]


@contextmanager
def sqlite_write(db: sqlite3.Connection, lock: AbstractContextManager[Any]) -> Iterator[sqlite3.Cursor]:
    """A write transaction on a connection the store's threads share:
    ``lock`` keeps it to one thread at a time, ``BEGIN IMMEDIATE`` takes the
    database's write lock up front (two writers that both read first cannot
    deadlock upgrading), and anything raised in the block rolls back."""
    with lock:
        cursor = db.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
