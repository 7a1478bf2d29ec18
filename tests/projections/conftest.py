"""Fixtures of the read-side tests: a read side beside the test's ledger
(SQLite or PostgreSQL, per the ``store`` fixture), and Redis servers of the
tests' own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.rows import (
    BalanceRow,
    HistoryRow,
    HoldRow,
    PriceRuleRow,
    TransactionRow,
    WalletRow,
)
from projections.runtime import ReadSide
from tests.support.services import RedisServer

ALL_ROW_TYPES = (BalanceRow, HistoryRow, TransactionRow, HoldRow, WalletRow, PriceRuleRow)


@pytest.fixture
def read_side(ledger, store) -> Iterator[ReadSide]:
    side = ReadSide(ledger.app, store.env, clock=ledger.clock, wait_s_max=0.5)
    yield side
    side.close()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    yield server
    server.close()


def dump(store) -> dict[str, list]:
    """Every read-model row, by table, in key order."""
    with store.read() as cursor:
        return {t.TABLE: list(store.all_rows(cursor, t)) for t in ALL_ROW_TYPES}
