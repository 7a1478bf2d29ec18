"""Returning a stranger's deposit, on the embedded chain and through the
JSON-RPC adapter: the admin's return credits the deposit and withdraws it
at once into the token account it came from, so the account's ledger
balance is unchanged and the custody token account gives the tokens back
on chain, exactly once through a crash at every settlement step, creating
no account. A deposit is resolved once: assigned or returned, never both;
a return whose token account is gone reopens it."""

from __future__ import annotations

import functools

import pytest
from solders.pubkey import Pubkey

from application import commands as c
from application.authority import INTERNAL
from application.handlers import deposits
from application.settlement.reconciler import adjust_for_finding
from domain.errors import FindingNotAdjustable
from domain.movements import DEPOSIT, REVERSAL, WITHDRAWAL
from domain.reconciliation import BALANCE_MISMATCH
from domain.system import EXTERNAL_ID, deposit_credit_id, deposit_id, deposit_return_id
from interface.chain import transactions as tx
from projections.runtime import ReadSide
from tests.settlement.conftest import SettlementRig
from tests.settlement.test_crash import CRASH_POINTS, crash_at, settle_through_crashes
from tests.settlement.test_deposits import (
    DEAL,
    account_with_address,
    clean_but_the_faucet,
    deposit_findings,
    drig,
    scanner,
    wallet,
)
from tests.settlement.test_withdrawals import wallet_balance

pytestmark = pytest.mark.anyio
__all__ = ["drig"]  # the fixture, parametrised over both chains


async def strangers_finding(rig: SettlementRig, amount: int = 3 * DEAL):
    """An account holding 10 DEAL, a stranger's deposit of ``amount`` (of
    the 50 its token account held) into it recorded as a finding; the
    finding, the deposit's signature and the stranger's wallet."""
    account = await account_with_address(rig)
    stranger = wallet(rig)
    signature = stranger.deposit(rig.chain.token_account_address(account), amount).signature
    await scanner(rig).scan()
    (finding,) = deposit_findings(rig)
    return account, finding.finding_id, signature, stranger


def token_balance(rig: SettlementRig, address: str) -> int | None:
    """A token account's DEAL on chain; None while it does not exist."""
    found = rig.embedded.get_account(Pubkey.from_string(address))
    return None if found is None else tx.decode_token_account(bytes(found.data)).amount


class FeePayerSpending:
    """What the fee payer spends from now on: its lamports' drop, and the
    fees of the transactions it paid for since (the rest is rent)."""

    def __init__(self, rig: SettlementRig) -> None:
        self.rig = rig

    async def __aenter__(self) -> FeePayerSpending:
        self.lamports = self._lamports()
        self.paid = set(await self.rig.chain.fee_payer_signatures())
        return self

    async def __aexit__(self, *_: object) -> None:
        self.spent = self.lamports - self._lamports()
        since = set(await self.rig.chain.fee_payer_signatures()) - self.paid
        landed = [self.rig.embedded.landed(signature) for signature in since]
        self.fees = sum(transaction.fee for transaction in landed if transaction is not None)

    def assert_fees_only(self) -> None:
        """No rent: the lamports dropped by the fees alone."""
        assert self.spent == self.fees < self.rig.embedded.rent_lamports().token_account, (
            self.spent, self.fees)

    def _lamports(self) -> int:
        found = self.rig.embedded.get_account(
            Pubkey.from_string(self.rig.chain.fee_payer_address))
        return 0 if found is None else found.lamports


@pytest.mark.parametrize("point", [None, *CRASH_POINTS])
async def test_a_returned_deposit_reaches_the_strangers_wallet_once(
    drig: SettlementRig, point: str | None,
) -> None:
    rig = drig
    account, finding_id, signature, stranger = await strangers_finding(rig)
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
    assert token_balance(rig, stranger.token_account) == 50 * DEAL  # back where it came from
    assert wallet_balance(rig, stranger.address) is None  # nothing created
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
    account, finding_id, _, stranger = await strangers_finding(rig)
    rig.execute(c.FreezeAccount(account))
    with pytest.raises(Exception, match="frozen"):
        rig.execute(c.ReturnDeposit(finding_id))
    (finding,) = deposit_findings(rig)
    assert finding.adjusted_by is None  # the refusal left no trace
    rig.execute(c.UnfreezeAccount(account))
    rig.execute(c.ReturnDeposit(finding_id))
    await rig.settle()
    assert token_balance(rig, stranger.token_account) == 50 * DEAL


async def test_a_return_lands_in_the_source_account_and_creates_nothing(
    chain_rig: SettlementRig,
) -> None:
    """The deposit came from a token account that is not the sender's
    associated one: the return pays into it, creates the associated one
    not, and the fee payer's lamports drop by the transaction's fee only
    (a return created the sender's associated account, at the fee payer's
    2,039,280 lamports of rent, whatever the sender had)."""
    rig = chain_rig
    account, finding_id, _, stranger = await strangers_finding(rig)

    async with FeePayerSpending(rig) as spending:
        returned = rig.execute(c.ReturnDeposit(finding_id)).transfer_id
        await rig.settle()

    assert rig.transfer(returned).settlement_status == "settled"
    assert token_balance(rig, stranger.token_account) == 50 * DEAL
    assert wallet_balance(rig, stranger.address) is None
    spending.assert_fees_only()
    assert spending.fees > 0  # the return's own transaction
    assert rig.ledger.balance(account) == 10 * DEAL == await rig.chain_balance(account)
    assert rig.store.wallets_withdrawn_to([stranger.address]) == set()  # paid nothing for it


@pytest.mark.parametrize("gone", ["closed", "another_mint"])
async def test_a_return_the_chain_refuses_reopens_the_deposit(
    drig: SettlementRig, gone: str,
) -> None:
    """The stranger closes the token account the deposit came from (or
    opens it again for a mint of its own), so the return's withdrawal fails
    on chain, creating nothing. Its compensation takes the credit back too:
    the account holds what it held before the return (the deposit is in
    its token account, unassigned again), the external side is back at 0,
    and the finding is open for a new return or an assignment, each a
    movement with new ids."""
    await refused_returns_reopen_the_deposit(drig, gone)


async def test_both_stores_reopen_a_refused_return(rig: SettlementRig) -> None:
    """The same on the embedded chain with the log, the settlement store
    and the read models on PostgreSQL too."""
    await refused_returns_reopen_the_deposit(rig, "closed")


async def refused_returns_reopen_the_deposit(rig: SettlementRig, gone: str) -> None:
    account = await account_with_address(rig)
    stranger = wallet(rig)
    signature = stranger.deposit(rig.chain.token_account_address(account), 3 * DEAL).signature
    await scanner(rig).scan()
    (finding,) = deposit_findings(rig)
    if gone == "closed":
        stranger.close_token_account()  # burns the 47 DEAL it still held
    else:
        stranger.reopen_token_account_for_another_mint()

    async with FeePayerSpending(rig) as spending:
        first = rig.execute(c.ReturnDeposit(finding.finding_id)).transfer_id
        await rig.settle()
        second = rig.execute(c.ReturnDeposit(finding.finding_id)).transfer_id
        await rig.settle()

    spending.assert_fees_only()
    assert wallet_balance(rig, stranger.address) is None
    for returned in (first, second):
        undone = rig.transfer(rig.transfer(returned).reversed_by)
        assert f"deposit_source_account_missing: token account {stranger.token_account}" in (
            undone.reason)

    credits = [deposit_credit_id(signature, account, attempt) for attempt in (0, 1, 2)]
    assert credits[0] == deposit_id(signature, account) and len(set(credits)) == 3
    assert (first, second) == tuple(deposit_return_id(credit) for credit in credits[:2])
    for credit_id, return_id in zip(credits[:2], (first, second), strict=True):
        credit, back = rig.transfer(credit_id), rig.transfer(return_id)
        assert (credit.kind, credit.status, back.status) == (DEPOSIT, "reversed", "reversed")
        undone = rig.transfer(credit.reversed_by)
        assert (undone.kind, undone.source, undone.destination, undone.amount) == (
            REVERSAL, account, EXTERNAL_ID, 3 * DEAL)
    assert rig.ledger.balance(account) == 10 * DEAL
    assert rig.ledger.balance(EXTERNAL_ID) == 0
    assert await rig.chain_balance(account) == 13 * DEAL  # the tokens never left
    (reopened,) = deposit_findings(rig)
    assert reopened.adjusted_by is None
    await assert_read_models_agree(rig, account, 10 * DEAL)
    report = await rig.reconcile()  # as before the return: unassigned, not adjustable
    (mismatch,) = [row for row in report.mismatches if row.account_id == account]
    assert (mismatch.kind, mismatch.expected, mismatch.actual) == (
        BALANCE_MISMATCH, 10 * DEAL, 13 * DEAL)
    with pytest.raises(FindingNotAdjustable, match=str(finding.finding_id)):
        adjust_for_finding(rig.fold, rig.ledger.writer, mismatch.finding_id, INTERNAL)

    assigned = rig.execute(c.AssignDeposit(finding.finding_id))

    assert (assigned.transfer_id, assigned.replayed) == (credits[2], False)
    assert rig.execute(c.AssignDeposit(finding.finding_id)).replayed
    assert rig.ledger.balance(account) == 13 * DEAL == await rig.chain_balance(account)
    assert rig.ledger.balance(EXTERNAL_ID) == -3 * DEAL
    await assert_read_models_agree(rig, account, 13 * DEAL)
    assert clean_but_the_faucet(await rig.reconcile(full=True), 3 * DEAL)  # 47 burnt


@pytest.mark.parametrize("associated", ["missing", "there"])
async def test_a_return_recorded_before_the_upgrade_creates_nothing(
    drig: SettlementRig, associated: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A return recorded before returns named the deposit's token account
    (its event has none, as the earlier code wrote it) still goes where it
    went then, the sender's associated token account, and reconciles; but
    that account is created no more: missing, the return fails saying so,
    at the fee only, and reopens the finding; the next return goes to the
    deposit's own token account."""
    rig = drig
    account, finding_id, _, stranger = await strangers_finding(rig)
    if associated == "there":
        stranger.open_associated_account(0)
    monkeypatch.setattr(deposits, "record_movement", functools.partial(
        _without_token_account, deposits.record_movement))
    first = rig.execute(c.ReturnDeposit(finding_id)).transfer_id
    monkeypatch.undo()
    assert getattr(rig.transfer(first), "token_account", None) is None  # as then

    async with FeePayerSpending(rig) as spending:
        await rig.settle()

    spending.assert_fees_only()
    if associated == "there":
        assert rig.transfer(first).settlement_status == "settled"
        assert wallet_balance(rig, stranger.address) == 3 * DEAL
        assert clean_but_the_faucet(await rig.reconcile(full=True))
        return
    assert wallet_balance(rig, stranger.address) is None
    undone = rig.transfer(rig.transfer(first).reversed_by)
    assert "wallet_token_account_missing" in undone.reason
    assert "recorded before returns went to the deposit's own token account" in undone.reason
    second = rig.execute(c.ReturnDeposit(finding_id)).transfer_id
    await rig.settle()
    assert rig.transfer(second).settlement_status == "settled"
    assert token_balance(rig, stranger.token_account) == 50 * DEAL
    assert rig.ledger.balance(account) == 10 * DEAL == await rig.chain_balance(account)


def _without_token_account(record, *args, token_account=None, **kwargs):
    """``record_movement`` as the code before this change called it."""
    return record(*args, **kwargs)


async def assert_read_models_agree(rig: SettlementRig, account, balance: int) -> None:
    """The read models, brought up to the log's head, hold ``balance`` for
    the account, and the audit's replay agrees with them, supply conserved.
    The projector here is the only one: it must hold the projection lock
    (a standby projects nothing, and the read would wait for it)."""
    side = ReadSide(rig.ledger.app, rig.store_config.env)
    try:
        side.projector.catch_up()
        assert side.projector.lock.held, (
            "the projector did not take the projection lock (another session holds it, or no "
            "connection for it: see the log), so it projected nothing")
        assert side.queries.balance(account).balance == balance
        report = side.queries.audit_replay()
        assert report.mismatches == [] and report.supply_ok, report.mismatches
    finally:
        side.close()


async def test_only_an_unassigned_deposit_is_returned(drig: SettlementRig) -> None:
    rig = drig
    await account_with_address(rig)
    from uuid import uuid4

    from domain.errors import FindingNotFound

    with pytest.raises(FindingNotFound):
        rig.execute(c.ReturnDeposit(uuid4()))
