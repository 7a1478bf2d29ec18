"""An admin reversal goes on chain like any movement, so it must agree with
its original's fate there: it is taken only once the original settled (a
reversal of a movement that then failed would move other tokens back), and
a reversal that fails on chain is compensated like any failed movement,
which gives the original its effect back (found by a reviewer)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application import commands as c
from domain.amounts import UNITS_PER_DEAL
from domain.errors import TransferNotReversible, TransferNotSettled
from domain.reconciliation import UNKNOWN_SIGNATURE
from tests.settlement.conftest import SettlementRig

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


def refused(rig: SettlementRig, command: c.Command, error: type[Exception]) -> None:
    """``command`` is refused with ``error`` and writes nothing."""
    before = rig.ledger.app.event_log.head()
    with pytest.raises(error):
        rig.execute(command)
    assert rig.ledger.app.event_log.head() == before


async def test_a_movement_is_reversed_only_once_settled_and_never_once_failed(
    rig: SettlementRig,
) -> None:
    """The reviewer's case: carol's payment to bob fails on chain (her token
    account is frozen), so bob's payment to alice, signed after it, fails
    too. A reversal asked while bob's payment was pending is refused; once
    it failed, nothing moved to reverse. Chain and ledger agree throughout."""
    alice, bob, carol = rig.open_account(10 * DEAL), rig.open_account(DEAL), rig.open_account(10 * DEAL)
    await rig.settle()
    freeze = rig.embedded.freeze_token_account(rig.custody, rig.address(carol)).signature
    carol_paid, paid, minted = uuid4(), uuid4(), uuid4()
    rig.execute(c.TransferFunds(carol_paid, carol, bob, 10 * DEAL, "carol pays bob"))
    rig.execute(c.TransferFunds(paid, bob, alice, 10 * DEAL, "bob pays alice"))
    rig.execute(c.Mint(minted, alice, DEAL))
    for pending in (paid, minted):
        refused(rig, c.ReverseTransfer(uuid4(), pending, "undo"), TransferNotSettled)

    await rig.settle()

    assert rig.transfer(paid).settlement_status == "failed"
    rig.execute(c.RetryCompensation(carol_paid))  # bob held too little until his failed too
    assert rig.transfer(minted).status == "settled"
    refused(rig, c.ReverseTransfer(uuid4(), paid, "undo"), TransferNotReversible)
    rig.execute(c.ReverseTransfer(uuid4(), minted, "undo"))  # settled: reversible
    await rig.settle()
    balances = [rig.ledger.balance(account) for account in (alice, bob, carol)]
    assert balances == [10 * DEAL, DEAL, 10 * DEAL]
    await rig.assert_chain_matches_ledger()
    report = await rig.reconcile(full=True)
    assert not report.mismatches
    assert [(f.kind, f.signature) for f in report.unmatched_signatures] == [
        (UNKNOWN_SIGNATURE, freeze)]
