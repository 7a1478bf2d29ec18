"""Two processes writing to one hot account: the one that keeps losing its
commits to the other takes the writer turn and wins.

CI caught the starvation: two API processes sending fees into the one
treasury, and one of them lost thirty optimistic commits in a row and
answered 503. Here the other process commits a fee into the treasury each
time, just before our commit, which is the worst case that load produced by
chance."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import uuid4

import pytest

from application import commands as c
from application.errors import LedgerUnavailable
from application.eventlog.locks import advisory_lock_key
from application.write import processor as processor_module
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from tests.support.http import wait_until
from tests.support.ledgers import LedgerHarness
from tests.support.services import pg_connect

FEE = UNITS_PER_DEAL  # the "goal" service's price
WAIT_S = 10


class RivalProcess:
    """Another service process that charges a fee just before each of our
    commits, in a thread of its own (it may have to wait for our turn)."""

    def __init__(self, rival: LedgerHarness, payer, database: str) -> None:
        self.rival = rival
        self.payer = payer
        self.database = database
        recorder = rival.app.recorder
        self.turn_key = advisory_lock_key(f"deals-ledger:{recorder.datastore.schema}:"
                                          f"{recorder.events_table_name}:writer-turn")
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def charge_before(self, commit):
        def commit_after_the_rival(*args, **kwargs):
            done = threading.Event()
            thread = threading.Thread(target=self._charge, args=(done,), name="rival")
            thread.start()
            self.threads.append(thread)
            wait_until(lambda: done.is_set() or self._waiting_for_the_turn(), WAIT_S,
                       "the rival's commit to land or to wait for the writer turn")
            return commit(*args, **kwargs)

        return commit_after_the_rival

    def _charge(self, done: threading.Event) -> None:
        try:
            self.rival.execute(c.ChargeFee(uuid4(), self.payer, "goal"))
        except BaseException as error:  # reported by the test
            self.errors.append(error)
        finally:
            done.set()

    def _waiting_for_the_turn(self) -> bool:
        key = self.turn_key & 0xFFFF_FFFF_FFFF_FFFF
        with pg_connect(self.database) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = %s AND objid::bigint = %s",
                (key >> 32, key & 0xFFFF_FFFF),
            ).fetchone()
        return row[0] > 0

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT_S)
        assert not self.errors, self.errors


@pytest.fixture
def hot_treasury(postgres, postgres_database) -> Iterator[tuple[LedgerHarness, RivalProcess]]:
    ours = LedgerHarness(postgres.env)
    theirs = LedgerHarness(postgres.env, clock=ours.clock, genesis=False)
    payer = ours.open_account(1000 * UNITS_PER_DEAL)
    rival = RivalProcess(theirs, payer, postgres_database.name)
    ours.execute(c.ChargeFee(uuid4(), payer, "goal"))  # the treasury is cached
    try:
        yield ours, rival
    finally:
        theirs.close()
        ours.close()


def test_a_writer_that_keeps_losing_takes_the_turn_and_wins(hot_treasury, monkeypatch):
    ours, rival = hot_treasury
    treasury_before = ours.balance(TREASURY_ID)
    monkeypatch.setattr(ours.app.events, "put", rival.charge_before(ours.app.events.put))
    outcome = ours.execute(c.ChargeFee(uuid4(), rival.payer, "goal"))
    rival.join()
    attempts = processor_module.OPTIMISTIC_ATTEMPTS + 1
    assert len(rival.threads) == attempts
    assert ours.processor.conflicts == processor_module.OPTIMISTIC_ATTEMPTS
    assert ours.processor.turns_taken == 1
    assert ours.balance(TREASURY_ID) == treasury_before + attempts * FEE + FEE
    assert ours.balance(rival.payer) == outcome.source_balance - FEE, "the last rival waited"


def test_without_the_turn_that_writer_starves(hot_treasury, monkeypatch):
    """What the turn is for: the same rival, the turn never taken."""
    ours, rival = hot_treasury
    monkeypatch.setattr(processor_module, "OPTIMISTIC_ATTEMPTS",
                        processor_module.CONFLICT_RETRIES_MAX)
    monkeypatch.setattr(processor_module, "CONFLICT_BACKOFF_S_MAX", 0.0)
    treasury_before = ours.balance(TREASURY_ID)
    monkeypatch.setattr(ours.app.events, "put", rival.charge_before(ours.app.events.put))
    with pytest.raises(LedgerUnavailable, match="stayed contended"):
        ours.execute(c.ChargeFee(uuid4(), rival.payer, "goal"))
    rival.join()
    assert ours.processor.turns_taken == 0
    assert ours.balance(TREASURY_ID) == treasury_before + len(rival.threads) * FEE
