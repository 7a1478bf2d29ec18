"""A genesis row that cannot be decoded stops the start with the row's log
position (as the audit names it) and the advice to run the audit, never
"a bug" with a TypeError. The service does not start read-only: a ledger
whose own movements it cannot read is not served (the offline audit,
``deals-ledger replay``, reads it)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from application.errors import StoreDamaged
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings


def test_an_undecodable_genesis_row_stops_the_start_naming_its_position(tmp_path):
    settings = Settings(data_dir=tmp_path / "var", settlement_enabled=False)
    service = LedgerService(settings).start(projections=False)
    table = service.app.recorder.events_table_name
    service.stop()
    events_file = settings.eventsourcing_env()["SQLITE_DBNAME"]
    with sqlite3.connect(events_file) as conn:
        rowid, state = conn.execute(f"SELECT rowid, state FROM {table} "  # noqa: S608
                                    "WHERE topic LIKE '%Transfer.Recorded' "
                                    "ORDER BY rowid LIMIT 1").fetchone()
        conn.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?",  # noqa: S608
                     (re.sub(rb'"kind":"[^"]*",?', b"", state), rowid))
    again = LedgerService(settings)
    try:
        with pytest.raises(StoreDamaged, match=f"undecodable event at position {rowid} .*audit"):
            again.start(projections=False)
    finally:
        again.stop()
