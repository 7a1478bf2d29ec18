"""SQL written once for SQLite and PostgreSQL, as each log consumer's store
writes it: table names in braces (``{balances}``), ``?`` placeholders.

``SqlText`` fills in the names (schema-qualified on PostgreSQL) and, where
the driver wants them, ``%s`` placeholders, and remembers each statement it
made (the same few statements run for every page). ``statements`` splits a
DDL script. Both stores of derived tables (the read models, the settlement
store) use it, so what differs between the databases is said once.
"""

from __future__ import annotations

from collections.abc import Iterable


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
