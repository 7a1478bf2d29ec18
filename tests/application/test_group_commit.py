"""The group-commit write path: batches, isolation of failures, conflicts
with other processes and cache freshness."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from application.handlers.movements import BatchAborted
from application.outcomes import Outcome
from domain import errors
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from tests.support.ledgers import LedgerHarness

DEAL = UNITS_PER_DEAL


def test_one_batch_commits_all_its_commands_at_the_position_where_it_ends(ledger):
    """A position names a whole commit (a cut inside one rounds down, before
    it), so every command of a group commit answers where the commit ends:
    ``at=<its position>`` holds it."""
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    before = ledger.app.event_log.head()
    commands = [c.TransferFunds(uuid4(), source, destination, DEAL) for _ in range(5)]
    results = ledger.processor.process(commands)
    positions = [r.position for r in results]
    assert positions == [ledger.app.event_log.head()] * 5
    assert before + 5 * 3 == positions[0]
    assert [r.destination_balance for r in results] == [k * DEAL for k in range(1, 6)]


def test_a_refused_command_does_not_spoil_its_batch(ledger):
    source, destination = ledger.open_account(2 * DEAL), ledger.open_account()
    commands = [
        c.TransferFunds(uuid4(), source, destination, DEAL),
        c.TransferFunds(uuid4(), source, destination, 5 * DEAL),
        c.TransferFunds(uuid4(), source, destination, DEAL),
    ]
    results = ledger.processor.process(commands)
    assert isinstance(results[1], errors.InsufficientBalance)
    assert isinstance(results[0], Outcome) and isinstance(results[2], Outcome)
    assert ledger.balance(destination) == 2 * DEAL


def test_an_aborted_atomic_batch_leaves_nothing_while_its_neighbours_commit(ledger):
    source, destination = ledger.open_account(3 * DEAL), ledger.open_account()
    doomed_items = (c.TransferFunds(uuid4(), source, destination, DEAL),
                    c.TransferFunds(uuid4(), source, destination, 10 * DEAL))
    commands = [
        c.TransferFunds(uuid4(), source, destination, DEAL),
        c.TransferBatch(doomed_items, atomic=True),
        c.TransferFunds(uuid4(), source, destination, DEAL),
    ]
    results = ledger.processor.process(commands)
    assert isinstance(results[1], BatchAborted) and results[1].index == 1
    assert ledger.balance(destination) == 2 * DEAL
    assert ledger.app.load(doomed_items[0].transfer_id) is None
    assert results[2].destination_balance == 2 * DEAL


def test_the_same_id_twice_in_one_batch_moves_once(ledger):
    source, destination = ledger.open_account(3 * DEAL), ledger.open_account()
    command = c.TransferFunds(uuid4(), source, destination, DEAL)
    first, second = ledger.processor.process([command, command])
    assert (first.replayed, second.replayed) == (False, True)
    assert first.position == second.position
    assert ledger.balance(destination) == DEAL


@pytest.fixture
def second_process(store, ledger):
    """Another writer on the same store, as a second service process has."""
    other = LedgerHarness(store.env, clock=ledger.clock)
    yield other
    other.close()


def test_a_balance_changed_by_another_process_is_seen_before_refusing(ledger, second_process):
    account, other = ledger.open_account(), ledger.open_account()
    with pytest.raises(errors.InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), account, other, DEAL))  # now cached at 0
    second_process.execute(c.Mint(uuid4(), account, DEAL))
    outcome = ledger.execute(c.TransferFunds(uuid4(), account, other, DEAL))
    assert outcome.source_balance == 0


def test_a_spend_by_another_process_is_seen_before_accepting(ledger, second_process):
    account, other = ledger.open_account(DEAL), ledger.open_account()
    ledger.execute(c.TransferFunds(uuid4(), account, other, 1))  # cached with DEAL - 1
    second_process.execute(c.TransferFunds(uuid4(), account, other, DEAL - 1))
    with pytest.raises(errors.InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), account, other, 1))
    assert ledger.balance(account) == 0


def test_a_version_conflict_reloads_and_reruns_without_losing_or_doubling(
    ledger, second_process, monkeypatch
):
    """Simulate the race the freshness check cannot close: the other process
    writes between our refresh and our save."""
    account, other = ledger.open_account(10 * DEAL), ledger.open_account()
    ledger.execute(c.ChargeFee(uuid4(), account, "goal"))  # treasury and account cached
    treasury_before = ledger.balance(TREASURY_ID)
    second_process.execute(c.ChargeFee(uuid4(), account, "goal"))
    monkeypatch.setattr(ledger.processor, "_refresh_cache", lambda: None)
    conflicts_before = ledger.processor.conflicts
    outcome = ledger.execute(c.ChargeFee(uuid4(), account, "goal"))
    assert ledger.processor.conflicts == conflicts_before + 1
    assert outcome.source_balance == 7 * DEAL
    assert ledger.balance(TREASURY_ID) == treasury_before + 2 * DEAL
    assert ledger.balance(account) + ledger.balance(other) == 7 * DEAL


def test_a_retry_through_another_process_is_answered_from_the_log(ledger, second_process):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    command = c.TransferFunds(uuid4(), source, destination, DEAL)
    first = ledger.execute(command)
    again = second_process.execute(command)
    assert again.replayed and again.position == first.position
    assert ledger.balance(destination) == DEAL


def test_the_aggregate_cache_is_bounded_and_evicted_accounts_reload(store):
    ledger = LedgerHarness(store.env, cached_max=8)
    try:
        accounts = [ledger.open_account(DEAL) for _ in range(20)]
        assert len(ledger.processor.cache) <= 8
        for account in accounts:
            ledger.execute(c.TransferFunds(uuid4(), account, accounts[0] if account != accounts[0]
                                           else accounts[1], 1))
        assert len(ledger.processor.cache) <= 8
        assert sum(ledger.balance(a) for a in accounts) == 20 * DEAL
    finally:
        ledger.close()


def test_hot_accounts_are_snapshotted_so_reloading_them_stays_cheap(ledger, monkeypatch):
    from application.write import processor

    monkeypatch.setattr(processor, "SNAPSHOT_INTERVAL", 10)
    account = ledger.open_account(100 * DEAL)
    ledger.processor.process([c.ChargeFee(uuid4(), account, "search") for _ in range(30)])
    snapshots = list(ledger.app.snapshots.get(TREASURY_ID))
    assert snapshots, "the treasury crossed the interval and has a snapshot"
    fresh = ledger.app.load(TREASURY_ID)
    assert fresh.balance == ledger.processor.cache.get(TREASURY_ID).balance


def test_a_command_whose_events_cannot_be_encoded_fails_alone(ledger, monkeypatch):
    """A lone surrogate that slipped past validation cannot be encoded for
    the store; the commit fails before writing, and only that command is
    refused: its batch-mates are decided again without it and commit."""
    monkeypatch.setattr("application.references.check_reason", lambda text, name: text)
    source, destination = ledger.open_account(3 * DEAL), ledger.open_account()
    poisoned = c.TransferFunds(uuid4(), source, destination, DEAL,
                               metadata=(("a", "half \ud800 pair"),))
    commands = [c.TransferFunds(uuid4(), source, destination, DEAL), poisoned,
                c.TransferFunds(uuid4(), source, destination, DEAL)]
    results = ledger.processor.process(commands)
    assert isinstance(results[1], errors.InvalidRequest), results[1]
    assert isinstance(results[0], Outcome) and isinstance(results[2], Outcome)
    assert ledger.balance(destination) == 2 * DEAL
    assert ledger.app.load(poisoned.transfer_id) is None
