"""The application's events table reached with plain SQL, to change stored
events behind the application's back (tamper tests)."""

from __future__ import annotations

import sqlite3

from tests.support.services import pg_connect


class RawEvents:
    """The application's events table, reached with plain SQL."""

    def __init__(self, ledger, store) -> None:
        self.kind = store.kind
        self.settings = store.settings
        self.table = ledger.app.recorder.events_table_name
        self.env = store.env

    def execute(self, sql: str, params: tuple = ()) -> None:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.env["SQLITE_DBNAME"])
            with conn:
                conn.execute(sql.format(t=self.table, id="rowid").replace("%s", "?"), params)
            conn.close()
        else:
            database = self.settings.database_url.rsplit("/", 1)[1]
            with pg_connect(database) as conn:
                conn.execute(sql.format(t=f'"{self.env["POSTGRES_SCHEMA"]}".{self.table}',
                                        id="notification_id"), params)

    def state_at(self, position: int, ledger) -> bytes:
        return ledger.app.recorder.select_notifications(position, 1)[0].state
