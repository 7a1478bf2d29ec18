"""The settlement steps as commands: given a transfer's settlement state,
when a step is recorded, then it changes exactly what it says, a repeat
changes nothing, and a step for a submission not in force is refused
without a trace. Events recorded before the settlement fields existed still
replay. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from uuid import uuid4

import pytest

from application import commands as c
from application.handlers.settlement_steps import compensation_id
from application.settlement.fold import SettlementFold
from application.settlement.store import open_settlement_store
from domain.amounts import UNITS_PER_DEAL
from domain.errors import SettlementConflict
from domain.system import TREASURY_ID
from tests.support.ledgers import LedgerHarness

DEAL = UNITS_PER_DEAL
TX = base64.b64encode(b"signed transaction bytes").decode()


def a_transfer(ledger: LedgerHarness) -> tuple:
    alice = ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
    return transfer_id, alice


def unchanged(ledger: LedgerHarness):
    class Unchanged:
        def __enter__(self):
            self.before = ledger.app.event_log.head()

        def __exit__(self, *exc):
            assert ledger.app.event_log.head() == self.before

    return Unchanged()


def test_a_submission_is_recorded_once(ledger: LedgerHarness) -> None:
    transfer_id, _ = a_transfer(ledger)
    first = ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))

    with unchanged(ledger):
        again = ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))

    assert (first.replayed, again.replayed) == (False, True)
    transfer = ledger.app.transfer(transfer_id)
    assert (transfer.settlement_status, transfer.signature) == ("submitted", "sig-1")
    assert transfer.last_valid_block_height == 300 and transfer.status == "pending"


def test_a_submission_replaces_only_the_one_in_force(ledger: LedgerHarness) -> None:
    transfer_id, _ = a_transfer(ledger)
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))

    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.RecordSubmission("sig-2", 400, TX, (transfer_id,)))  # 1 is in force
    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.RecordSubmission("sig-2", 400, TX, (transfer_id,), supersedes="sig-0"))
    ledger.execute(c.RecordSubmission("sig-2", 400, TX, (transfer_id,), supersedes="sig-1"))
    with unchanged(ledger), pytest.raises(SettlementConflict):  # a second settler, stale
        ledger.execute(c.RecordSubmission("sig-3", 400, TX, (transfer_id,), supersedes="sig-1"))

    assert ledger.app.transfer(transfer_id).signature == "sig-2"


def test_an_outcome_is_only_for_the_submission_in_force(ledger: LedgerHarness) -> None:
    transfer_id, _ = a_transfer(ledger)
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))

    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.MarkSettled("sig-0", 7, (transfer_id,)))
    ledger.execute(c.MarkSettled("sig-1", 7, (transfer_id,)))
    with unchanged(ledger):
        assert ledger.execute(c.MarkSettled("sig-1", 7, (transfer_id,))).replayed
    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.MarkSettlementFailed("sig-1", "late", (transfer_id,)))

    transfer = ledger.app.transfer(transfer_id)
    assert (transfer.status, transfer.signature, transfer.slot) == ("settled", "sig-1", 7)


def test_a_failure_is_compensated_once(ledger: LedgerHarness) -> None:
    transfer_id, alice = a_transfer(ledger)
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))
    failure = c.MarkSettlementFailed("sig-1", '{"InstructionError":[0,{"Custom":17}]}',
                                     (transfer_id,))

    first = ledger.execute(failure)
    with unchanged(ledger):
        again = ledger.execute(failure)

    assert first.compensations == again.compensations == (compensation_id(transfer_id),)
    assert again.replayed
    assert ledger.balance(alice) == 0
    assert ledger.app.transfer(transfer_id).status == "reversed"


def test_a_rejection_sends_each_movement_back_to_wait_alone(ledger: LedgerHarness) -> None:
    first, _ = a_transfer(ledger)
    second, _ = a_transfer(ledger)
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (first, second)))

    ledger.execute(c.MarkSettlementRejected("sig-1", "refused", (first, second)))
    with unchanged(ledger):
        assert ledger.execute(c.MarkSettlementRejected("sig-1", "refused", (first,))).replayed

    for transfer_id in (first, second):
        transfer = ledger.app.transfer(transfer_id)
        assert (transfer.settlement_status, transfer.signature) == ("queued", None)
        assert transfer.settles_alone
    ledger.execute(c.RecordSubmission("sig-2", 300, TX, (first,)))


def test_movements_that_do_not_settle_refuse_submissions(ledger: LedgerHarness) -> None:
    transfer_id, _ = a_transfer(ledger)
    other, bob = a_transfer(ledger)
    hold = uuid4()
    ledger.execute(c.PlaceHold(hold, bob, amount=1))
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))
    ledger.execute(c.MarkSettlementFailed("sig-1", "refused", (transfer_id,)))

    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.RecordSubmission("sig-2", 300, TX, (compensation_id(transfer_id),)))
    with unchanged(ledger), pytest.raises(SettlementConflict):
        ledger.execute(c.RecordSubmission("sig-3", 300, TX, (hold,)))


def test_events_recorded_before_the_settlement_fields_still_replay(tmp_path) -> None:
    """Strip the fields this issue added from stored events (as the log of
    an older version holds them): aggregates and the fold still read them."""
    from tests.support.stores import sqlite_store

    store = sqlite_store(tmp_path)
    ledger = LedgerHarness(store.env)
    try:
        transfer_id, _ = a_transfer(ledger)
        ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))
        _strip_new_fields(ledger, ("adjusts", "transaction", "supersedes"))
        fresh = LedgerHarness(store.env, genesis=False)
        try:
            transfer = fresh.app.transfer(transfer_id)
            assert transfer.signature == "sig-1" and transfer.adjusts is None
            fold = SettlementFold(fresh.app, open_settlement_store(fresh.app.recorder))
            fold.catch_up()
            (in_flight,) = fold.store.in_flight()
            assert in_flight.transaction is None  # nothing to resend: it is waited out
            fold.store.close()
        finally:
            fresh.close()
    finally:
        ledger.close()


def _strip_new_fields(ledger: LedgerHarness, names: tuple[str, ...]) -> None:
    datastore = ledger.app.recorder.datastore
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("SELECT rowid, state FROM stored_events")
        for rowid, state in cursor.fetchall():
            fields = json.loads(state)
            if any(name in fields for name in names):
                for name in names:
                    fields.pop(name, None)
                cursor.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                               (json.dumps(fields).encode(), rowid))


def test_the_settlement_store_rebuilds_from_the_log(ledger: LedgerHarness) -> None:
    transfer_id, alice = a_transfer(ledger)
    other, _ = a_transfer(ledger)
    ledger.execute(c.RecordSubmission("sig-1", 300, TX, (transfer_id,)))
    ledger.execute(c.MarkSettled("sig-1", 9, (transfer_id,)))
    store = open_settlement_store(ledger.app.recorder)
    fold = SettlementFold(ledger.app, store, page_events=7)
    try:
        fold.catch_up()
        before = (store.balances([alice, TREASURY_ID]), [m.transfer_id for m in store.queued(10)])
        store.reset()
        assert store.position() == 0 and store.queued(10) == []
        fold.rebuild()
        after = (store.balances([alice, TREASURY_ID]), [m.transfer_id for m in store.queued(10)])
        assert after == before
        assert before[0][alice] == DEAL and other in before[1]
        assert store.position() == ledger.app.event_log.head()
    finally:
        store.close()
