"""A reversal that fails on chain is compensated like any failed movement:
the compensation gives the original its effect back, so the original is
settled again (and may be reversed anew). It was refused as "a reversal
cannot itself be reversed", leaving an uncompensated failure for ever
(found by a reviewer)."""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid4

import pytest

from application import commands as c
from application.handlers.settlement_steps import compensation_id
from domain.amounts import UNITS_PER_DEAL
from domain.reconciliation import UNCOMPENSATED_FAILURE, UNKNOWN_SIGNATURE
from domain.transfer import Transfer
from tests.settlement.conftest import SettlementRig
from tests.support.ledgers import LedgerHarness

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


async def paid_then_frozen(rig: SettlementRig) -> tuple:
    """Alice paid bob 5 (settled); then bob's token account is frozen, so
    any reversal of the payment fails on chain."""
    alice, bob = rig.open_account(10 * DEAL), rig.open_account(DEAL)
    paid = uuid4()
    rig.execute(c.TransferFunds(paid, alice, bob, 5 * DEAL, "alice pays bob"))
    await rig.settle()
    freeze = rig.embedded.freeze_token_account(rig.custody, rig.address(bob)).signature
    return alice, bob, paid, freeze


async def only_the_freeze(rig: SettlementRig, freeze: str) -> None:
    await rig.assert_chain_matches_ledger()
    report = await rig.reconcile(full=True)
    assert not report.mismatches
    assert [(f.kind, f.signature) for f in report.unmatched_signatures] == [
        (UNKNOWN_SIGNATURE, freeze)]


async def test_a_failed_reversal_is_compensated_and_its_original_stands_again(
    rig: SettlementRig,
) -> None:
    alice, bob, paid, freeze = await paid_then_frozen(rig)
    for attempt in range(2):  # the original is reversible again, and fails again
        undo = uuid4()
        rig.execute(c.ReverseTransfer(undo, paid, f"undo {attempt}"))
        assert rig.transfer(paid).status == "reversed"
        await rig.settle()

        reversal, original = rig.transfer(undo), rig.transfer(paid)
        assert reversal.settlement_status == "failed" and reversal.compensation_blocked is None
        assert reversal.reversed_by == compensation_id(undo) and reversal.status == "reversed"
        assert original.status == "settled" and original.reversed_by is None
        assert [rig.ledger.balance(alice), rig.ledger.balance(bob)] == [5 * DEAL, 6 * DEAL]
        await only_the_freeze(rig, freeze)
    events = [type(e).__name__ for e in rig.ledger.app.repository.event_store.get(paid)]
    assert events.count("ReversalUndone") == 2


async def test_a_blocked_compensation_of_a_reversal_is_retried_once_it_can_post(
    rig: SettlementRig,
) -> None:
    """Alice spent the reversed amount before the reversal failed: giving
    the payment back to bob would overdraw her, so it is blocked and
    reported; once her spend failed too, the retry posts it."""
    alice, bob, paid, freeze = await paid_then_frozen(rig)
    carol, undo, spent = rig.open_account(), uuid4(), uuid4()
    rig.execute(c.ReverseTransfer(undo, paid, "undo"))
    rig.execute(c.TransferFunds(spent, alice, carol, 10 * DEAL, "alice spends it"))
    await rig.settle()

    assert rig.transfer(undo).compensation_blocked is not None
    assert rig.transfer(spent).status == "reversed"  # 5 short on chain: failed, given back
    report = await rig.reconcile(full=True)
    assert [(f.kind, f.transfer_id) for f in report.mismatches] == [(UNCOMPENSATED_FAILURE, undo)]

    posted = rig.execute(c.RetryCompensation(undo))
    again = rig.execute(c.RetryCompensation(undo))
    assert again.replayed and again == replace(posted, replayed=True)
    assert posted.transfer_id == compensation_id(undo)
    assert rig.transfer(paid).status == "settled"
    assert [rig.ledger.balance(a) for a in (alice, bob, carol)] == [5 * DEAL, 6 * DEAL, 0]
    await rig.assert_chain_matches_ledger()
    assert not (await rig.reconcile(full=True)).mismatches


def test_a_reversal_taken_while_pending_that_failed_with_its_original_undoes_both(
    ledger: LedgerHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log written before pending reversals were refused: the original
    and its reversal both fail on chain. The original's failure finds it
    reversed (nothing compensated); the reversal's compensation gives it its
    effect back, and then compensates it, so the ledger ends as the chain."""
    alice, bob = ledger.open_account(10 * DEAL), ledger.open_account(DEAL)
    paid, undo = uuid4(), uuid4()
    ledger.execute(c.TransferFunds(paid, alice, bob, 5 * DEAL))
    with monkeypatch.context() as before_the_fix:
        before_the_fix.setattr(Transfer, "check_settled", lambda self: None)
        ledger.execute(c.ReverseTransfer(undo, paid, "undo"))
    for transfer_id in (paid, undo):
        signature = f"sig-{uuid4().hex}"
        ledger.execute(c.RecordSubmission(signature, 300, "dA==", (transfer_id,)))
        ledger.execute(c.MarkSettlementFailed(signature, "refused", (transfer_id,)))

    original, reversal = ledger.app.transfer(paid), ledger.app.transfer(undo)
    assert original.reversed_by == compensation_id(paid)
    assert reversal.reversed_by == compensation_id(undo)
    assert original.compensation_blocked is None and reversal.compensation_blocked is None
    assert [ledger.balance(alice), ledger.balance(bob)] == [10 * DEAL, DEAL]
