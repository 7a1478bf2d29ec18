"""A consumer's position in the log, kept in the consumer's own database and
moved in the same transaction as what it derived from the page.

The move is a compare-and-set from the position the page was read after,
first thing in the page's transaction: a second consumer that read the same
position blocks on that row until the first commits, then finds it moved
and rolls back (``TrackingConflict``), so no page is ever applied twice, even
when the one-active-holder lock (``locks``) was lost.

The table and column names are parameters because each consumer's tracking
table already holds positions in deployed ledgers: they are stored
contracts, never renamed nor rewritten. Today's tables:

- read models: the eventsourcing library's tracking table (``tracking`` on
  SQLite, ``read_model_tracking`` on PostgreSQL), columns
  ``application_name`` / ``notification_id``;
- settlement: ``settlement_tracking``, columns ``name`` / ``position``.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import IntegrityError


class TrackingConflict(IntegrityError):
    """Another consumer moved the tracking position first: this page was not
    applied (its transaction rolled back). Read the position and go on."""

    def __init__(self, name: str, previous: int) -> None:
        super().__init__(
            f"tracking of {name} is no longer at {previous}: another consumer applied this page"
        )
        self.name = name
        self.previous = previous


class Tracking:
    """One consumer's row (``name``) in a tracking table. ``table`` is as the
    consumer's SQL names it (schema-qualified and quoted where needed);
    ``param`` is the placeholder its cursors take."""

    def __init__(
        self, table: str, name: str, *, name_column: str, position_column: str, param: str = "?",
    ) -> None:
        self.name = name

        def sql(text: str) -> str:
            return text.format(t=table, n=name_column, p=position_column).replace("?", param)

        self._seed = sql("INSERT INTO {t} ({n}, {p}) VALUES (?, 0) ON CONFLICT ({n}) DO NOTHING")
        self._position = sql("SELECT {p} FROM {t} WHERE {n} = ?")
        self._advance = sql("UPDATE {t} SET {p} = ? WHERE {n} = ? AND {p} = ? RETURNING {p}")
        self._reset = sql("UPDATE {t} SET {p} = 0 WHERE {n} = ?")

    def seed(self, cursor: Any) -> None:
        """Create the row at position 0 unless it exists."""
        cursor.execute(self._seed, (self.name,))

    def position(self, cursor: Any) -> int:
        cursor.execute(self._position, (self.name,))
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def advance(self, cursor: Any, previous: int, position: int) -> None:
        """Move from ``previous`` to ``position``, first thing in a page's
        transaction; raises ``TrackingConflict`` if it is no longer at
        ``previous`` (the caller's transaction must then roll back)."""
        if position <= previous:
            raise ValueError("tracking_must_move_forward")
        cursor.execute(self._advance, (position, self.name, previous))
        if cursor.fetchone() is None:
            raise TrackingConflict(self.name, previous)

    def reset(self, cursor: Any) -> None:
        """Back to 0, for a rebuild (with the consumer's tables emptied in
        the same transaction)."""
        cursor.execute(self._reset, (self.name,))
