"""Returning a stranger's deposit, on the embedded chain and through the
JSON-RPC adapter: the admin's return credits the deposit and withdraws it
at once to the wallet that owns the token account it came from, so the
account's ledger balance is unchanged and the custody token account gives
the tokens back on chain, exactly once through a crash at every settlement
step. A deposit is resolved once: assigned or returned, never both."""

from __future__ import annotations

import pytest

from application import commands as c
from domain.errors import FindingNotAdjustable
from domain.movements import DEPOSIT, WITHDRAWAL
from domain.system import EXTERNAL_ID, deposit_id, deposit_return_id
from tests.settlement.conftest import SettlementRig
from tests.settlement.test_crash import CRASH_POINTS, crash_at, settle_through_crashes
from tests.settlement.test_deposits import (
    DEAL,
    account_with_address,
    deposit_findings,
    drig,
    scanner,
    wallet,
)
from tests.settlement.test_withdrawals import wallet_balance

pytestmark = pytest.mark.anyio
__all__ = ["drig"]  # the fixture, parametrised over both chains


async def strangers_finding(rig: SettlementRig, amount: int = 3 * DEAL):
    """An account holding 10 DEAL, a stranger's deposit of ``amount`` into
    it recorded as a finding; the finding, the deposit's signature and the
    stranger's wallet address."""
    account = await account_with_address(rig)
    stranger = wallet(rig)
    signature = stranger.deposit(rig.chain.token_account_address(account), amount).signature
    await scanner(rig).scan()
    (finding,) = deposit_findings(rig)
    return account, finding.finding_id, signature, stranger.address


@pytest.mark.parametrize("point", [None, *CRASH_POINTS])
async def test_a_returned_deposit_reaches_the_strangers_wallet_once(
    drig: SettlementRig, point: str | None,
) -> None:
    rig = drig
    account, finding_id, signature, owner = await strangers_finding(rig)
    assert await rig.chain_balance(account) == 13 * DEAL

    returned = rig.execute(c.ReturnDeposit(finding_id))
    repeat = rig.execute(c.ReturnDeposit(finding_id))
    crashed = [] if point is None else crash_at(rig, point)
    crashes = await settle_through_crashes(rig)

    return_id = deposit_return_id(deposit_id(signature, account))
    assert (returned.transfer_id, returned.kind, returned.replayed) == (
        return_id, WITHDRAWAL, False)
    assert (repeat.transfer_id, repeat.replayed) == (return_id, True)
    assert crashes == len(crashed) == (0 if point is None else 1)
    credit, back = rig.transfer(deposit_id(signature, account)), rig.transfer(return_id)
    assert (credit.kind, credit.source, credit.destination, credit.signature) == (
        DEPOSIT, EXTERNAL_ID, account, signature)
    assert (back.source, back.destination, back.amount, back.settlement_status) == (
        account, EXTERNAL_ID, 3 * DEAL, "settled")
    assert wallet_balance(rig, owner) == 3 * DEAL
    assert rig.ledger.balance(account) == 10 * DEAL == await rig.chain_balance(account)
    assert rig.ledger.balance(EXTERNAL_ID) == 0
    await rig.assert_each_settled_once([return_id])
    assert rig.execute(c.ReturnDeposit(finding_id)).replayed  # settled since: still a replay
    (finding,) = deposit_findings(rig)
    assert finding.adjusted_by == return_id


async def test_assign_after_return_and_return_after_assign_are_refused(
    drig: SettlementRig,
) -> None:
    rig = drig
    account, returned_finding, signature, _ = await strangers_finding(rig, DEAL)
    rig.execute(c.ReturnDeposit(returned_finding))
    with pytest.raises(FindingNotAdjustable):
        rig.execute(c.AssignDeposit(returned_finding))

    stranger = wallet(rig)
    second = stranger.deposit(rig.chain.token_account_address(account), 2 * DEAL).signature
    await scanner(rig).scan()
    assigned = next(f.finding_id for f in deposit_findings(rig) if f.signature == second)
    rig.execute(c.AssignDeposit(assigned))
    with pytest.raises(FindingNotAdjustable):
        rig.execute(c.ReturnDeposit(assigned))

    await rig.settle()
    assert rig.ledger.balance(account) == 12 * DEAL == await rig.chain_balance(account)
    assert rig.transfer(deposit_id(signature, account)).kind == DEPOSIT


async def test_a_frozen_accounts_deposit_is_returned_once_unfrozen(
    drig: SettlementRig,
) -> None:
    """The ledger's rule for a frozen account holds: nothing moves in or out
    of it, a return included, until it is unfrozen."""
    rig = drig
    account, finding_id, _, owner = await strangers_finding(rig)
    rig.execute(c.FreezeAccount(account))
    with pytest.raises(Exception, match="frozen"):
        rig.execute(c.ReturnDeposit(finding_id))
    (finding,) = deposit_findings(rig)
    assert finding.adjusted_by is None  # the refusal left no trace
    rig.execute(c.UnfreezeAccount(account))
    rig.execute(c.ReturnDeposit(finding_id))
    await rig.settle()
    assert wallet_balance(rig, owner) == 3 * DEAL


async def test_only_an_unassigned_deposit_is_returned(drig: SettlementRig) -> None:
    rig = drig
    await account_with_address(rig)
    from uuid import uuid4

    from domain.errors import FindingNotFound

    with pytest.raises(FindingNotFound):
        rig.execute(c.ReturnDeposit(uuid4()))
