"""A commit that waits out its lock timeout behind another connection is
contention on a healthy store, not an outage.

The reviewer's attack (issue 13): one process commits a huge group under
the events table lock; a second process's commits wait ``lock_timeout``
seconds, and were answered 503 "the event store is unavailable" with a
false ``store_unreachable`` alert. Here a real table lock, held by another
PostgreSQL connection, makes the wait time out (a one-second lock timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError

from application import commands as c
from application.alerts import AlertKind
from application.errors import LedgerUnavailable
from application.write import processor as processor_module
from application.write.contention import (
    StoreContended,
    is_lock_timeout,
    lock_timeouts_as_contention,
)
from tests.support.http import wait_until
from tests.support.ledgers import LedgerHarness
from tests.support.services import pg_connect

WAIT_S = 60


class TableLock:
    """The events table locked by another connection, as a rival process's
    long commit holds it, until ``release``."""

    def __init__(self, ledger: LedgerHarness, database: str) -> None:
        recorder = ledger.app.recorder
        self.conn = pg_connect(database)
        self.conn.execute("BEGIN")
        self.conn.execute(f'LOCK TABLE "{recorder.datastore.schema}".'
                          f'"{recorder.events_table_name}" IN EXCLUSIVE MODE')

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("COMMIT")
            self.conn.close()


@pytest.fixture
def ledger(postgres) -> Iterator[LedgerHarness]:
    harness = LedgerHarness({**postgres.env, "POSTGRES_LOCK_TIMEOUT": "1"})
    try:
        yield harness
    finally:
        harness.close()


def test_a_timed_out_lock_wait_is_known_as_contention(ledger, postgres_database):
    """The library's wrapped error from a real lock wait, and the recorder's
    own: both are contention; a connection failure is not."""
    recorder = ledger.app.recorder
    lock = TableLock(ledger, postgres_database.name)
    try:
        with (
            pytest.raises(StoreContended) as raised_error,
            lock_timeouts_as_contention(),
            recorder.datastore.transaction(commit=False) as curs,
        ):
            recorder._lock_table(curs)
    finally:
        lock.release()
    assert is_lock_timeout(raised_error.value)
    library_error = raised_error.value.__cause__
    assert isinstance(library_error, OperationalError)
    assert is_lock_timeout(library_error)
    assert not is_lock_timeout(OperationalError("connection refused"))


def test_a_command_waiting_behind_a_held_table_lock_is_applied(ledger, postgres_database, raised):
    source = ledger.open_account(100)
    destination = ledger.open_account()
    lock = TableLock(ledger, postgres_database.name)
    released = threading.Thread(target=_release_after_a_timeout, args=(ledger, lock))
    released.start()
    try:
        outcome = ledger.execute(c.TransferFunds(uuid4(), source, destination, 30))
    finally:
        released.join(WAIT_S)
        lock.release()
    assert ledger.processor.lock_waits_timed_out >= 1
    assert outcome.source_balance == 70
    assert ledger.balance(destination) == 30
    assert raised.of(AlertKind.STORE_UNREACHABLE) == []


def test_contention_past_the_budget_is_answered_alone_without_an_alert(
    ledger, postgres_database, raised, monkeypatch
):
    monkeypatch.setattr(processor_module, "CONFLICT_RETRIES_MAX", 2)
    source = ledger.open_account(100)
    destination = ledger.open_account()
    lock = TableLock(ledger, postgres_database.name)
    try:
        with pytest.raises(LedgerUnavailable, match="stayed contended"):
            ledger.execute(c.TransferFunds(uuid4(), source, destination, 30))
    finally:
        lock.release()
    assert ledger.processor.lock_waits_timed_out == 2
    assert ledger.balance(source) == 100, "nothing of it was applied"
    assert raised.of(AlertKind.STORE_UNREACHABLE) == []
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 30))
    assert ledger.balance(destination) == 30


def _release_after_a_timeout(ledger: LedgerHarness, lock: TableLock) -> None:
    wait_until(lambda: ledger.processor.lock_waits_timed_out >= 1, WAIT_S,
               "a commit to wait out its lock timeout")
    lock.release()
