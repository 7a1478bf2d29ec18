"""Deposits the scan once missed (issue 18): a plain ``transfer`` (no mint
named), several transfers in one transaction (each its own deposit, keyed
by the instruction that made it), and anything sent into a system account's
custody address (a finding, never a credit), on the embedded chain and
through the JSON-RPC adapter. A transfer made inside another program is
read from the transaction's inner instructions (tests/chain/
test_token_transfers.py runs a real one; the scan test below answers one
in JSON-RPC's shape, since no program here can CPI into a deposit address).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from application import commands as c
from application.authority import INTERNAL
from application.settlement.deposit_scan import Deposit, DepositHooks
from application.settlement.reconciler import (
    Reconciler,
    ReconciliationConfig,
    adjust_for_finding,
)
from application.settlement.store import FindingRow
from domain.amounts import UNITS_PER_DEAL
from domain.errors import FindingNotAdjustable, IdempotencyConflict, LedgerError
from domain.movements import DEPOSIT
from domain.reconciliation import BALANCE_MISMATCH, EXTERNAL_MISMATCH, UNASSIGNED_DEPOSIT
from domain.system import (
    EXTERNAL_ID,
    REWARDS_ID,
    TREASURY_ID,
    deposit_attempt_id,
    deposit_credit_id,
    deposit_finding_id,
    deposit_id,
)
from tests.settlement.conftest import FAST_RETRY, SettlementRig, SimulatedCrash
from tests.settlement.test_deposit_returns import token_balance
from tests.settlement.test_deposits import (
    account_with_address,
    clean_but_the_faucet,
    deposit_findings,
    drig,
    forget_cursors,
    mismatch_of,
    scanner,
    wallet,
)
from tests.settlement.test_withdrawals import wallet_balance
from tests.support.outside_wallets import OutsideWallet

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL
__all__ = ["drig"]


async def connected(rig: SettlementRig) -> tuple[UUID, OutsideWallet]:
    """A user account with a deposit address and an outside wallet
    connected to it (its transfers there are credited)."""
    account = await account_with_address(rig)
    outside = wallet(rig)
    rig.execute(c.ConnectWallet(account, outside.address))
    return account, outside


@pytest.mark.parametrize("checked", [True, False], ids=["transfer_checked", "transfer"])
async def test_two_transfers_in_one_transaction_are_two_deposits(
    drig: SettlementRig, checked: bool,
) -> None:
    """Keyed by signature, account and the instruction that made each: the
    first keeps the id deposits always had, the second names instruction 1;
    a rescan from nothing credits neither again. A plain ``transfer`` (no
    mint named) is read as ``transfer_checked`` is."""
    account, outside = await connected(drig)
    signature = outside.transfer(drig.chain.token_account_address(account), 2 * DEAL, 3 * DEAL,
                                 checked=checked).signature

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (2, 0)
    first, second = (drig.transfer(deposit_id(signature, account, position))
                     for position in (None, "1"))
    assert (first.amount, second.amount) == (2 * DEAL, 3 * DEAL)
    assert {(moved.kind, moved.destination, moved.signature) for moved in (first, second)} == {
        (DEPOSIT, account, signature)}
    assert first.id != second.id
    forget_cursors(drig)
    assert (await scanner(drig).scan()).credited == 0
    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)
    assert clean_but_the_faucet(await drig.reconcile(full=True))


async def test_a_crash_between_two_transfers_of_one_transaction_credits_each_once(
    drig: SettlementRig,
) -> None:
    account, outside = await connected(drig)
    signature = outside.transfer(drig.chain.token_account_address(account), 2 * DEAL, 3 * DEAL
                                 ).signature
    credits = 0

    def crash_at_the_second(deposit: Deposit) -> None:
        nonlocal credits
        credits += 1
        if credits == 2:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        await scanner(drig, DepositHooks(before_credit=crash_at_the_second)).scan()
    assert drig.ledger.balance(account) == 12 * DEAL

    mismatch = await mismatch_of(drig, account)  # read with one of the two credited
    with pytest.raises(FindingNotAdjustable, match="deposit scan"):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch, INTERNAL)

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (1, 0)
    assert drig.transfer(deposit_id(signature, account, "1")).amount == 3 * DEAL
    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)


async def test_a_strangers_two_transfers_are_two_findings_each_assigned_once(
    drig: SettlementRig,
) -> None:
    account = await account_with_address(drig)
    stranger = wallet(drig)
    signature = stranger.transfer(drig.chain.token_account_address(account), DEAL, 2 * DEAL
                                  ).signature

    assert (await scanner(drig).scan()).unassigned == 2
    findings = {row.finding_id: row for row in deposit_findings(drig)}
    assert set(findings) == {deposit_finding_id(signature, account),
                             deposit_finding_id(signature, account, "1")}

    credits = [drig.execute(c.AssignDeposit(finding_id)) for finding_id in findings]
    drig.execute(c.ConnectWallet(account, stranger.address))
    forget_cursors(drig)

    assert {credit.transfer_id for credit in credits} == {
        deposit_id(signature, account), deposit_id(signature, account, "1")}
    assert (await scanner(drig).scan()).credited == 0
    assert drig.ledger.balance(account) == 13 * DEAL == await drig.chain_balance(account)



async def test_refused_returns_of_two_transfers_reopen_each_under_ids_of_its_own(
    drig: SettlementRig,
) -> None:
    """Each later attempt's credit is derived from its deposit's first id,
    position and all: two reopened deposits of one transaction never share
    one. The transaction's row drops each credit taken out, so the next
    credits count once in the reconciliation."""
    account = await account_with_address(drig)
    stranger = wallet(drig)
    signature = stranger.transfer(drig.chain.token_account_address(account), DEAL, 2 * DEAL
                                  ).signature
    await scanner(drig).scan()
    positions = (None, "1")
    findings = [deposit_finding_id(signature, account, position) for position in positions]
    stranger.close_token_account()  # where both would go back; burns the 47 DEAL left
    for finding_id in findings:
        drig.execute(c.ReturnDeposit(finding_id))
    await drig.settle()  # both refused on chain: both findings reopened

    credits = [drig.execute(c.AssignDeposit(finding_id)).transfer_id for finding_id in findings]

    assert credits == [deposit_attempt_id(deposit_id(signature, account, position), 1)
                       for position in positions]
    assert credits[0] == deposit_credit_id(signature, account, 1) != credits[1]
    assert drig.ledger.balance(account) == 13 * DEAL == await drig.chain_balance(account)
    assert clean_but_the_faucet(await drig.reconcile(full=True), 3 * DEAL)

async def test_a_credit_summed_before_positions_is_not_credited_again(
    drig: SettlementRig,
) -> None:
    """A scan before positions were in ids credited a transaction's
    ``transfer_checked`` into one address as one deposit of their sum, under
    the position-less id: a rescan (a lost cursor) finds that credit and
    takes the transaction's summed transfers as taken."""
    account, outside = await connected(drig)
    landed = outside.transfer(drig.chain.token_account_address(account), 2 * DEAL, 3 * DEAL,
                              checked=True)
    signature = landed.signature
    assert landed.landed is not None
    drig.execute(c.CreditDeposit(  # what the scan credited before
        deposit_id=deposit_id(signature, account), account_id=account, amount=5 * DEAL,
        signature=signature, slot=landed.landed.slot, source=outside.token_account,
        owner=outside.address))

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (0, 0)
    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)


@pytest.mark.parametrize("system_account", [TREASURY_ID, REWARDS_ID], ids=["treasury", "rewards"])
async def test_what_is_sent_to_a_system_account_is_a_finding_never_a_credit(
    drig: SettlementRig, system_account: UUID,
) -> None:
    """Even from a wallet connected to a user account: users have no deposit
    address in a system account. Recorded once; the ledger's own movements
    into the same address (funding, a user's transfer, settled) are not."""
    account = await account_with_address(drig)
    drig.execute(c.TransferFunds(uuid4(), account, system_account, DEAL, "a ledger movement"))
    await drig.settle()
    outside = wallet(drig)
    drig.execute(c.ConnectWallet(account, outside.address))
    address = drig.chain.token_account_address(system_account)
    signature = outside.transfer(address, 6 * DEAL).signature
    before = drig.ledger.balance(system_account)

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (0, 1)
    (finding,) = deposit_findings(drig)
    assert (finding.finding_id, finding.kind, finding.account_id, finding.signature,
            finding.actual) == (deposit_finding_id(signature, system_account),
                                UNASSIGNED_DEPOSIT, system_account, signature, 6 * DEAL)
    forget_cursors(drig)
    assert (await scanner(drig).scan()).unassigned == 0
    assert drig.ledger.balance(system_account) == before
    assert drig.ledger.balance(account) == 9 * DEAL


async def test_both_stores_keep_two_deposits_of_one_transaction(rig: SettlementRig) -> None:
    """SQLite and PostgreSQL: both credits settle under the one signature
    (the settlement store's row for it names both), so the reconciliation
    finds the transaction's change explained."""
    account = await account_with_address(rig)
    outside = wallet(rig)
    rig.execute(c.ConnectWallet(account, outside.address))
    signature = outside.transfer(rig.chain.token_account_address(account), DEAL, 4 * DEAL
                                 ).signature

    assert (await scanner(rig).scan()).credited == 2
    rig.fold.catch_up()
    submission = rig.store.submission(signature)
    assert submission is not None
    assert set(submission.transfer_ids) == {deposit_id(signature, account),
                                            deposit_id(signature, account, "1")}
    assert clean_but_the_faucet(await rig.reconcile(full=True))
    assert rig.ledger.balance(account) == 15 * DEAL == await rig.chain_balance(account)


async def test_transfers_made_inside_another_program_are_deposits(drig: SettlementRig) -> None:
    """A wallet's call to a router that moves DEAL by CPI: read from the
    inner instructions (LiteSVM's record, JSON-RPC's innerInstructions), one
    deposit per inner transfer, the second named ``0.1`` (the second invoked
    inside instruction 0). The transaction is recorded as a cluster records
    it, not run: no program here makes a CPI transfer into a given address
    (tests/chain/test_token_transfers.py reads a real CPI transfer)."""
    account, outside = await connected(drig)
    signature = outside.routed_deposit(drig.chain.token_account_address(account), 2 * DEAL,
                                       3 * DEAL)

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (2, 0)
    assert [drig.transfer(deposit_id(signature, account, position)).amount
            for position in (None, "0.1")] == [2 * DEAL, 3 * DEAL]
    forget_cursors(drig)
    assert (await scanner(drig).scan()).credited == 0
    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)
    assert clean_but_the_faucet(await drig.reconcile(full=True))


async def system_finding(rig: SettlementRig, system_account: UUID, amount: int
                         ) -> tuple[OutsideWallet, UUID, str]:
    stranger = wallet(rig)
    signature = stranger.transfer(rig.chain.token_account_address(system_account), amount
                                  ).signature
    assert (await scanner(rig).scan()).unassigned == 1
    (finding,) = deposit_findings(rig)
    return stranger, finding.finding_id, signature


async def test_a_system_accounts_deposit_is_assigned_on_to_a_user_account(
    drig: SettlementRig,
) -> None:
    """The treasury is credited (settled by the deposit's transaction), then
    pays the user account with a transfer the settler moves on chain: both
    custody token accounts end as the ledger says."""
    account = await account_with_address(drig)
    treasury_before = drig.ledger.balance(TREASURY_ID)
    _, finding_id, signature = await system_finding(drig, TREASURY_ID, 7 * DEAL)

    with pytest.raises(LedgerError) as refused:  # a system account is no user's
        drig.execute(c.AssignDeposit(finding_id, account_id=REWARDS_ID))
    assert refused.value.code == "invalid_request"
    onward = drig.execute(c.AssignDeposit(finding_id, account_id=account))
    repeat = drig.execute(c.AssignDeposit(finding_id, account_id=account))
    for other in (None, uuid4()):  # another request under the finding: a conflict
        with pytest.raises(IdempotencyConflict, match="account_id"):
            drig.execute(c.AssignDeposit(finding_id, account_id=other))
    await drig.settle()

    assert (onward.kind, onward.source, onward.destination, onward.amount) == (
        "transfer", TREASURY_ID, account, 7 * DEAL)
    assert (repeat.transfer_id, repeat.replayed) == (onward.transfer_id, True)
    assert drig.transfer(deposit_id(signature, TREASURY_ID)).amount == 7 * DEAL
    assert drig.ledger.balance(account) == 17 * DEAL == await drig.chain_balance(account)
    assert drig.ledger.balance(TREASURY_ID) == treasury_before
    assert await drig.chain_balance(TREASURY_ID) == treasury_before
    assert clean_but_the_faucet(await drig.reconcile(full=True))


async def test_a_user_accounts_deposit_is_assigned_to_no_other_account(
    drig: SettlementRig,
) -> None:
    account = await account_with_address(drig)
    other = await account_with_address(drig)
    stranger = wallet(drig)
    stranger.transfer(drig.chain.token_account_address(account), DEAL)
    await scanner(drig).scan()
    (finding,) = deposit_findings(drig)

    with pytest.raises(LedgerError) as refused:
        drig.execute(c.AssignDeposit(finding.finding_id, account_id=other))

    assert refused.value.code == "invalid_request"
    assert drig.ledger.balance(other) == 10 * DEAL


async def test_a_system_accounts_deposit_is_returned_to_its_sender(drig: SettlementRig) -> None:
    await account_with_address(drig)
    treasury_before = drig.ledger.balance(TREASURY_ID)
    stranger, finding_id, _ = await system_finding(drig, TREASURY_ID, 2 * DEAL)

    returned = drig.execute(c.ReturnDeposit(finding_id))
    await drig.settle()

    assert (returned.kind, returned.source, returned.amount) == ("withdrawal", TREASURY_ID,
                                                                 2 * DEAL)
    assert drig.transfer(returned.transfer_id).settlement_status == "settled"
    assert drig.ledger.balance(TREASURY_ID) == treasury_before
    assert await drig.chain_balance(TREASURY_ID) == treasury_before
    assert token_balance(drig, stranger.token_account) == 50 * DEAL  # back where it came from
    assert wallet_balance(drig, stranger.address) is None


@pytest.mark.parametrize("into", ["its_account", "the_treasury"])
@pytest.mark.parametrize("resolved_by", ["assignment", "return", "refused_return"])
async def test_a_strangers_transfer_beside_a_credited_deposit_is_no_amount_mismatch(
    chain_rig: SettlementRig, into: str, resolved_by: str,
) -> None:
    """One transaction carries a connected wallet's deposit (credited) and a
    stranger's transfer into a custody address (an unassigned deposit),
    into the same account or another's: the full reconciliation expects the
    credited deposit's token account to change by the credit and the
    stranger's open deposit, which its own findings report. Once that is
    assigned or returned, its credit is named by the signature too; a
    refused return takes it out again (open as before). Each run is clean
    but for what the open deposit and the faucet leave."""
    rig = chain_rig
    account = await account_with_address(rig)
    receiver = account if into == "its_account" else TREASURY_ID
    stranger, finding = await beside_a_credited_deposit(rig, account, receiver)
    receiver_before = rig.ledger.balance(receiver)
    while_open = [(BALANCE_MISMATCH, receiver, 3 * DEAL),
                  (EXTERNAL_MISMATCH, EXTERNAL_ID, 100 * DEAL)]  # two wallets' faucet DEAL

    assert differences(await rig.reconcile(full=True)) == while_open
    faucet = 100 * DEAL  # two wallets' faucet DEAL
    if resolved_by == "refused_return":
        stranger.close_token_account()  # burns its 47 DEAL: the return has nowhere to go
        faucet -= 47 * DEAL
        rig.execute(c.ReturnDeposit(finding.finding_id))
        await rig.settle()
        assert differences(await rig.reconcile(full=True)) == [
            (BALANCE_MISMATCH, receiver, 3 * DEAL), (EXTERNAL_MISMATCH, EXTERNAL_ID, faucet)]
    if resolved_by == "return":
        rig.execute(c.ReturnDeposit(finding.finding_id))
        await rig.settle()
        assert token_balance(rig, stranger.token_account) == 50 * DEAL  # back where it came from
    else:
        rig.execute(c.AssignDeposit(finding.finding_id))

    kept = 0 if resolved_by == "return" else 3 * DEAL
    assert rig.ledger.balance(receiver) == receiver_before + kept == await rig.chain_balance(
        receiver)
    assert clean_but_the_faucet(await rig.reconcile(full=True), faucet)


def differences(report) -> list[tuple[str, UUID | None, int]]:
    return [(f.kind, f.account_id, f.actual - f.expected)
            for f in [*report.mismatches, *report.unmatched_signatures]]


async def test_a_deposit_assigned_while_its_transaction_is_checked_counts_once(
    chain_rig: SettlementRig,
) -> None:
    """The full run read the signature's row (one credit named) before an
    admin assigned the stranger's deposit beside it: the check reads the
    row and the open deposits again, at one position, so the new credit
    counts once, named by the row and no longer open (read apart, it was
    in neither: an amount_mismatch of the stranger's 3 DEAL)."""
    rig = chain_rig
    account = await account_with_address(rig)
    _, finding = await beside_a_credited_deposit(rig, account, account)
    chain = _AssignsWhenRead(rig, finding.signature, finding.finding_id)
    reconciler = Reconciler(writer=rig.ledger.writer, fold=rig.fold,
                            chain=chain,  # type: ignore[arg-type]
                            config=ReconciliationConfig(retry=FAST_RETRY))

    report = await reconciler.run(full=True)

    assert chain.assigned, "the transaction was never read: the test proves nothing"
    assert differences(report) == [  # the balance was read before the assignment
        (BALANCE_MISMATCH, account, 3 * DEAL), (EXTERNAL_MISMATCH, EXTERNAL_ID, 100 * DEAL)]
    assert clean_but_the_faucet(await rig.reconcile(full=True), 100 * DEAL)


async def beside_a_credited_deposit(rig: SettlementRig, account: UUID, receiver: UUID
                                    ) -> tuple[OutsideWallet, FindingRow]:
    """One transaction: a wallet connected to ``account`` deposits 2 DEAL
    into it (credited), a stranger 3 DEAL into ``receiver``'s address (an
    unassigned deposit). The stranger and the finding."""
    outside = wallet(rig)
    rig.execute(c.ConnectWallet(account, outside.address))
    stranger = wallet(rig)
    signature = outside.transfer_with(
        rig.chain.token_account_address(account), 2 * DEAL,
        stranger, rig.chain.token_account_address(receiver), 3 * DEAL).signature
    assert ((report := await scanner(rig).scan()).credited, report.unassigned) == (1, 1)
    (finding,) = deposit_findings(rig)
    assert finding.signature == signature
    return stranger, finding


class _AssignsWhenRead:
    """The reconciler's chain: an admin assigns the finding (and the fold
    takes it) the first time the reconciler reads its transaction."""

    def __init__(self, rig: SettlementRig, signature: str, finding_id: UUID) -> None:
        self._rig = rig
        self._signature = signature
        self._finding_id = finding_id
        self.assigned = False

    def __getattr__(self, name: str):
        return getattr(self._rig.chain, name)

    async def transaction(self, signature: str):
        if signature == self._signature and not self.assigned:
            self._rig.execute(c.AssignDeposit(self._finding_id))
            self._rig.fold.catch_up()
            self.assigned = True
        return await self._rig.chain.transaction(signature)
