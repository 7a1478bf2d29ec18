"""The external account reconciled (issue 18): on chain the tokens outside
custody are the mint's supply less every custody token account; the
reconciliation compares that with the external account's settled balance,
embedded and through the JSON-RPC adapter, on both stores. Withdrawals and
deposits leave it clean; DEAL minted or burned behind the ledger's back, or
an altered external balance, is an ``external_mismatch``; settlement in
flight (mints, burns, withdrawals landing during the reads) is none."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from solders.pubkey import Pubkey

from application import commands as c
from application.alerts import AlertKind
from application.authority import INTERNAL
from application.settlement.deposit_scan import DepositConfig, DepositScanner
from application.settlement.reconciler import (
    Reconciler,
    ReconciliationConfig,
    ReconciliationReport,
    adjust_for_finding,
)
from domain.errors import FindingNotAdjustable
from domain.reconciliation import BALANCE_MISMATCH, EXTERNAL_MISMATCH
from domain.system import EXTERNAL_ID, TREASURY_ID, deposit_finding_id
from tests.settlement.conftest import DEAL, FAST_RETRY, SettlementRig
from tests.support.alerts import CollectedAlerts
from tests.support.outside_wallets import OutsideWallet

pytestmark = pytest.mark.anyio


async def withdrawn_to_a_wallet(rig: SettlementRig, amount: int) -> tuple[UUID, OutsideWallet]:
    """An account funded with 10 DEAL, a wallet connected to it, and
    ``amount`` withdrawn to that wallet's associated token account."""
    account = rig.open_account(10 * DEAL)
    wallet = OutsideWallet(rig.embedded, Pubkey.from_string(rig.chain.mint_address))
    rig.execute(c.ConnectWallet(account, wallet.address))
    rig.execute(c.Withdraw(uuid4(), account, amount, wallet.address))
    await rig.settle()
    return account, wallet


async def outside_custody_on_chain(rig: SettlementRig) -> int:
    return await rig.chain.mint_supply() - sum(
        [await rig.chain_balance(account) for account in rig.accounts])


def findings(report: ReconciliationReport) -> list[tuple[str, UUID | None, int | None,
                                                          int | None]]:
    return [(f.kind, f.account_id, f.expected, f.actual)
            for f in [*report.mismatches, *report.unmatched_signatures]]


def scanner(rig: SettlementRig) -> DepositScanner:
    return DepositScanner(writer=rig.ledger.writer, fold=rig.fold, chain=rig.chain,
                          config=DepositConfig(retry=FAST_RETRY))


def mismatches(report: ReconciliationReport) -> list[tuple[str, UUID | None, int | None,
                                                            int | None]]:
    """The balance findings (a deposit's transaction is also an
    ``unknown_signature`` until the scan credits it)."""
    return [(f.kind, f.account_id, f.expected, f.actual) for f in report.mismatches]


async def test_withdrawals_and_deposits_leave_the_external_account_clean(
    chain_rig: SettlementRig,
) -> None:
    rig = chain_rig
    account, wallet = await withdrawn_to_a_wallet(rig, 6 * DEAL)
    wallet.deposit(rig.chain.token_account_address(account), 2 * DEAL,
                   source=wallet.associated_token_account)
    scanned = await scanner(rig).scan()
    assert scanned.credited == 1
    await rig.settle()

    report = await rig.reconcile(full=True)

    assert report.clean, findings(report)
    assert rig.ledger.balance(EXTERNAL_ID) == 4 * DEAL == await outside_custody_on_chain(rig)


async def test_a_deposit_the_scan_has_not_taken_is_reported_once_by_its_balance_finding(
    chain_rig: SettlementRig,
) -> None:
    """Normal lag: the deposit is in custody on chain and still external in
    the ledger until the scan credits it. The balance finding, held for the
    scan, reports it; the external check does not report it again, and
    still finds DEAL minted outside the ledger meanwhile."""
    rig = chain_rig
    account, wallet = await withdrawn_to_a_wallet(rig, 6 * DEAL)
    wallet.deposit(rig.chain.token_account_address(account), 2 * DEAL,
                   source=wallet.associated_token_account)

    lagging = await rig.reconcile()

    assert mismatches(lagging) == [(BALANCE_MISMATCH, account, 4 * DEAL, 6 * DEAL)]
    with pytest.raises(FindingNotAdjustable, match="deposit scan"):
        adjust_for_finding(rig.fold, rig.ledger.writer, lagging.mismatches[0].finding_id,
                           INTERNAL)
    wallet.fund(rig.custody, 3 * DEAL)
    minted = await rig.reconcile()
    assert mismatches(minted) == [(BALANCE_MISMATCH, account, 4 * DEAL, 6 * DEAL),
                                  (EXTERNAL_MISMATCH, EXTERNAL_ID, 4 * DEAL, 7 * DEAL)]
    assert ("leaves 7 DEAL outside custody, the ledger's external balance is 6 DEAL, 2 DEAL "
            "of it deposited and not credited yet") in minted.mismatches[1].detail
    assert (await scanner(rig).scan()).credited == 1
    assert findings(await rig.reconcile(full=True)) == [  # the same figures, credited
        (EXTERNAL_MISMATCH, EXTERNAL_ID, 4 * DEAL, 7 * DEAL)]


async def test_an_unassigned_deposit_is_reported_once_by_its_own_findings(
    chain_rig: SettlementRig,
) -> None:
    """A stranger's deposit stays in custody, external in the ledger, until
    an admin assigns or returns it: its ``unassigned_deposit`` and the
    balance finding report it, run after run, the external check not again;
    a burn outside custody meanwhile is still found."""
    rig = chain_rig
    _, wallet = await withdrawn_to_a_wallet(rig, 6 * DEAL)
    other = rig.open_account(10 * DEAL)
    await rig.settle()
    signature = wallet.deposit(rig.chain.token_account_address(other), 2 * DEAL,
                               source=wallet.associated_token_account).signature
    assert (await scanner(rig).scan()).unassigned == 1

    first, again = await rig.reconcile(full=True), await rig.reconcile()

    assert mismatches(first) == mismatches(again) == [
        (BALANCE_MISMATCH, other, 10 * DEAL, 12 * DEAL)]
    wallet.burn(wallet.associated_token_account, DEAL)
    assert mismatches(await rig.reconcile()) == [
        (BALANCE_MISMATCH, other, 10 * DEAL, 12 * DEAL),
        (EXTERNAL_MISMATCH, EXTERNAL_ID, 4 * DEAL, 3 * DEAL)]
    rig.execute(c.AssignDeposit(deposit_finding_id(signature, other)))
    assert findings(await rig.reconcile()) == [(EXTERNAL_MISMATCH, EXTERNAL_ID, 4 * DEAL,
                                                3 * DEAL)]


async def test_deal_minted_or_burned_behind_the_ledgers_back_is_an_external_mismatch(
    chain_rig: SettlementRig, raised: CollectedAlerts,
) -> None:
    rig = chain_rig
    _, wallet = await withdrawn_to_a_wallet(rig, 6 * DEAL)
    assert (await rig.reconcile()).clean
    wallet.fund(rig.custody, 4 * DEAL)  # the mint authority mints outside the ledger
    before = REGISTRY.get_sample_value("reconciliation_findings_total",
                                       {"kind": EXTERNAL_MISMATCH}) or 0

    minted = await rig.reconcile()

    assert findings(minted) == [(EXTERNAL_MISMATCH, EXTERNAL_ID, 6 * DEAL, 10 * DEAL)]
    assert "leaves 10 DEAL outside custody, the ledger's external balance is 6 DEAL" in (
        minted.mismatches[0].detail)
    assert "the supply is 1000000004 DEAL, the ledger's issuance 1000000000 DEAL" in (
        minted.mismatches[0].detail)
    assert REGISTRY.get_sample_value("reconciliation_findings_total",
                                     {"kind": EXTERNAL_MISMATCH}) == before + 1
    assert [a.fields["mismatches"] for a in raised.of(AlertKind.RECONCILIATION_FINDING)] == [1]
    with pytest.raises(FindingNotAdjustable, match="only a balance_mismatch is adjusted"):
        adjust_for_finding(rig.fold, rig.ledger.writer, minted.mismatches[0].finding_id,
                           INTERNAL)

    wallet.burn(wallet.associated_token_account, 5 * DEAL)
    burned = await rig.reconcile()

    assert findings(burned) == [(EXTERNAL_MISMATCH, EXTERNAL_ID, 6 * DEAL, 5 * DEAL)]


async def test_an_altered_external_balance_is_an_external_mismatch(chain_rig: SettlementRig) -> None:
    """The ledger's side altered (its settled balance row, which is what a
    reconciliation reads of the log): the chain did not change."""
    rig = chain_rig
    await withdrawn_to_a_wallet(rig, 6 * DEAL)
    with rig.store.transaction() as cursor:
        cursor.execute(rig.store.sql(
            "UPDATE {settlement_balances} SET balance = balance + ? WHERE account_id = ?"),
            (7 * DEAL, EXTERNAL_ID.hex))

    report = await rig.reconcile()

    assert findings(report) == [(EXTERNAL_MISMATCH, EXTERNAL_ID, 13 * DEAL, 6 * DEAL)]


async def test_mints_burns_and_withdrawals_landing_during_the_reads_are_no_finding(
    chain_rig: SettlementRig,
) -> None:
    """The supply is read while the settler takes steps: each reading
    straddles a landing or a settlement of mints, burns and withdrawals,
    and the run is clean (the custody accounts' readings under the same
    lag: test_reconciliation.py)."""
    rig = chain_rig
    account, wallet = await withdrawn_to_a_wallet(rig, DEAL)
    for amount in range(1, 7):
        rig.execute(c.Mint(uuid4(), account, amount * 1000))
        rig.execute(c.Burn(uuid4(), TREASURY_ID, amount * 100))
        rig.execute(c.Withdraw(uuid4(), account, amount * 10, wallet.address))
    chain = _StepsDuringEachRead(rig)
    reconciler = Reconciler(writer=rig.ledger.writer, fold=rig.fold,
                            chain=chain,  # type: ignore[arg-type]
                            config=ReconciliationConfig(retry=FAST_RETRY))

    report = await reconciler.run()

    assert chain.supply_reads_stepped, "no step during a supply read: the test proves nothing"
    assert report.clean, findings(report)
    await rig.settle()
    assert (await rig.reconcile()).clean
    assert rig.ledger.balance(EXTERNAL_ID) == await outside_custody_on_chain(rig)


class _StepsDuringEachRead:
    """The reconciler's chain: the settler takes two steps while it reads
    the supply (records, sends, confirms or marks settled), so the mints
    and burns it carries have landed and are not yet settled, or were
    settled since the store was read."""

    def __init__(self, rig: SettlementRig) -> None:
        self._rig = rig
        self.supply_reads_stepped = 0

    def __getattr__(self, name: str):
        return getattr(self._rig.chain, name)

    async def mint_supply(self) -> int:
        for _ in range(2):
            self.supply_reads_stepped += await self._rig.process.step()
        return await self._rig.chain.mint_supply()


async def test_a_withdrawal_settled_without_reaching_its_wallet_is_found(
    chain_rig: SettlementRig,
) -> None:
    """A settler that signs a withdrawal as a burn (as netting once did):
    the custody account changed as the log says, but the wallet's
    associated token account did not (``amount_mismatch``) and the DEAL is
    gone from the supply instead of outside custody (``external_mismatch``)."""
    rig = chain_rig
    signed = rig.chain.sign_movements

    async def as_burns(movements, **options):
        return await signed([replace(m, destination_wallet=None) for m in movements], **options)

    rig.chain.sign_movements = as_burns  # type: ignore[method-assign]
    account, wallet = await withdrawn_to_a_wallet(rig, 4 * DEAL)
    ata = str(wallet.associated_token_account)

    report = await rig.reconcile()

    assert sorted((f.kind, f.expected, f.actual) for f in [
        *report.mismatches, *report.unmatched_signatures]) == [
        ("amount_mismatch", 4 * DEAL, 0), (EXTERNAL_MISMATCH, 4 * DEAL, 0)]
    assert f"token account {ata} changed by 0 DEAL" in report.unmatched_signatures[0].detail
