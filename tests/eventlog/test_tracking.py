"""The one tracking implementation: each consumer's position moves by
compare-and-set inside the consumer's own transaction, in the table and
columns that consumer's deployed ledgers already hold (stored contracts)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from uuid import uuid4

import pytest

from application import commands as c
from application.eventlog.tracking import TrackingConflict
from application.settlement.fold import SettlementFold
from application.settlement.store import open_settlement_store
from projections.ledger_fold import PageChanges
from projections.read_model_store import open_store
from tests.support.services import pg_connect

# consumer -> (table on SQLite, table on PostgreSQL, name column, position column, name)
CONTRACTS = {
    "read_models": ("tracking", "read_model_tracking", "application_name", "notification_id",
                    "read_models"),
    "settlement": ("settlement_tracking", "settlement_tracking", "name", "position", "settlement"),
}


class ReadModels:
    def __init__(self, ledger, store) -> None:
        self.store = open_store(store.env)

    def move(self, previous: int, position: int) -> None:
        self.store.write_page(previous, PageChanges(last_position=position), None)


class Settlement:
    def __init__(self, ledger, store) -> None:
        self.store = open_settlement_store(ledger.app.recorder)

    def move(self, previous: int, position: int) -> None:
        with self.store.transaction() as cursor:
            self.store.tracking.advance(cursor, previous, position)


@pytest.fixture(params=["read_models", "settlement"])
def consumer(request, ledger, store) -> Iterator[tuple[str, ReadModels | Settlement]]:
    kind = {"read_models": ReadModels, "settlement": Settlement}[request.param]
    made = kind(ledger, store)
    yield request.param, made
    made.store.close()


def stored_position(name: str, made, store) -> int:
    """The position as an older version reads it: the contract's literal names."""
    sqlite_table, postgres_table, name_column, position_column, row = CONTRACTS[name]
    if store.kind == "sqlite":
        with closing(sqlite3.connect(made.store.path)) as db:
            return db.execute(f"SELECT {position_column} FROM {sqlite_table} "
                              f"WHERE {name_column} = ?", (row,)).fetchone()[0]
    schema = store.env["POSTGRES_SCHEMA"]
    with pg_connect(store.env["POSTGRES_DBNAME"]) as conn:
        return conn.execute(f'SELECT {position_column} FROM "{schema}".{postgres_table} '
                            f"WHERE {name_column} = %s", (row,)).fetchone()[0]


def test_a_second_move_from_the_same_position_conflicts_and_changes_nothing(consumer, store):
    name, made = consumer
    made.move(0, 5)

    with pytest.raises(TrackingConflict) as conflict:
        made.move(0, 7)

    assert (conflict.value.name, conflict.value.previous) == (name, 0)
    assert made.store.position() == stored_position(name, made, store) == 5


def test_tracking_never_moves_back(consumer):
    _, made = consumer
    made.move(0, 5)
    with pytest.raises(ValueError, match="tracking_must_move_forward"):
        made.move(5, 5)
    assert made.store.position() == 5


def test_a_settlement_fold_that_lost_the_race_goes_on_from_the_winner(ledger, caplog):
    """Two folds on one store: the one whose remembered position is stale
    applies nothing and continues from where the other left tracking."""
    stores = [open_settlement_store(ledger.app.recorder) for _ in range(2)]
    winner, loser = (SettlementFold(ledger.app, each) for each in stores)
    try:
        assert winner.catch_up() == loser.catch_up() == ledger.app.event_log.head()
        account = ledger.open_account(funded=10)
        ledger.execute(c.TransferFunds(uuid4(), account, ledger.open_account(), 3, "x"))
        head = ledger.app.event_log.head()
        assert winner.catch_up() == head
        movements = stores[0].queued(100)

        with caplog.at_level(logging.INFO, logger="application.settlement.fold"):
            assert loser.catch_up() == head

        assert "another process applied the page" in caplog.text
        assert stores[1].queued(100) == movements
    finally:
        for each in stores:
            each.close()
