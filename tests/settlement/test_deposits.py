"""Deposits, end to end on the embedded chain and through the JSON-RPC
adapter: a user's own wallet sends a real ``transfer_checked`` from its own
token account into an account's deposit address; the scan credits it once
when the wallet is connected to the account, records an unassigned deposit
when not (which an admin assigns), and never credits anything twice,
whatever crashes or rescans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from application import commands as c
from application.alerts import AlertKind
from application.authority import INTERNAL
from application.settlement.deposit_scan import DepositConfig, DepositHooks, DepositScanner
from application.settlement.metrics import SettlementLiveness
from application.settlement.reconciler import adjust_for_finding
from application.settlement.worker import StoreLiveness
from domain.amounts import UNITS_PER_DEAL
from domain.errors import FindingNotAdjustable, IdempotencyConflict, LedgerError
from domain.movements import DEPOSIT
from domain.reconciliation import EXTERNAL_MISMATCH, UNASSIGNED_DEPOSIT
from domain.system import (
    DEPOSIT_FINDINGS_RUN_ID,
    EXTERNAL_ID,
    TREASURY_ID,
    deposit_finding_id,
    deposit_id,
)
from interface.chain.custody import CustodyKey, CustodyKeys
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rotation import rotate_owner
from interface.chain.rpc_adapter import RpcChain
from tests.settlement.conftest import FAST_RETRY, SettlementRig, SimulatedCrash
from tests.support.outside_wallets import OutsideWallet
from tests.support.stores import sqlite_store

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


@pytest.fixture(params=["litesvm", "rpc"])
async def drig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, chain_kind=request.param)
    try:
        yield rig
    finally:
        await rig.close()


def scanner(rig: SettlementRig, hooks: DepositHooks | None = None) -> DepositScanner:
    return DepositScanner(writer=rig.ledger.writer, fold=rig.fold, chain=rig.chain,
                          config=DepositConfig(retry=FAST_RETRY), hooks=hooks)


async def account_with_address(rig: SettlementRig) -> UUID:
    """A user account whose deposit address exists on chain (its first
    settled movement created it)."""
    account = rig.open_account(funded=10 * DEAL)
    await rig.settle()
    return account


def wallet(rig: SettlementRig, funded: int = 50 * DEAL) -> OutsideWallet:
    outside = OutsideWallet(rig.embedded, Pubkey.from_string(rig.chain.mint_address))
    outside.fund(rig.custody, funded)
    return outside


def clean_but_the_faucet(report, minted: int = 50 * DEAL) -> bool:
    """The test wallets' DEAL is minted outside the ledger (``wallet``), so
    the one finding left is the external account's, off by exactly that."""
    return [(f.kind, f.account_id, f.actual - f.expected)
            for f in [*report.mismatches, *report.unmatched_signatures]] == [
        (EXTERNAL_MISMATCH, EXTERNAL_ID, minted)]


def deposit_findings(rig: SettlementRig) -> list:
    rig.fold.catch_up()
    return rig.store.findings(DEPOSIT_FINDINGS_RUN_ID, 10)


def forget_cursors(rig: SettlementRig) -> None:
    """As a rebuilt settlement store would: the scan starts over."""
    with rig.store.transaction() as cursor:
        cursor.execute(rig.store.sql("DELETE FROM {deposit_cursors}"))


async def test_a_connected_wallets_deposit_is_credited_once(drig: SettlementRig) -> None:
    account = await account_with_address(drig)
    outside = wallet(drig)
    drig.execute(c.ConnectWallet(account, outside.address))
    signature = outside.deposit(drig.chain.token_account_address(account), 5 * DEAL).signature

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (1, 0)
    credit = drig.transfer(deposit_id(signature, account))
    assert (credit.kind, credit.source, credit.destination, credit.amount) == (
        DEPOSIT, EXTERNAL_ID, account, 5 * DEAL)
    assert (credit.settlement_status, credit.signature) == ("settled", signature)
    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)
    again = await scanner(drig).scan()
    forget_cursors(drig)
    from_nothing = await scanner(drig).scan()
    assert again.credited == from_nothing.credited == 0
    assert drig.ledger.balance(account) == 15 * DEAL
    await drig.settle()  # nothing of the deposit is queued for the chain
    assert drig.ledger.balance(account) == await drig.chain_balance(account)
    report = await drig.reconcile(full=True)
    assert signature not in {row.signature for row in
                             [*report.mismatches, *report.unmatched_signatures]}


async def test_a_strangers_deposit_is_a_finding_an_admin_assigns(drig: SettlementRig) -> None:
    account = await account_with_address(drig)
    stranger = wallet(drig)
    signature = stranger.deposit(drig.chain.token_account_address(account), 3 * DEAL).signature

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (0, 1)
    assert drig.ledger.balance(account) == 10 * DEAL
    (finding,) = deposit_findings(drig)
    assert finding.finding_id == deposit_finding_id(signature, account)
    assert (finding.kind, finding.account_id, finding.signature, finding.actual) == (
        UNASSIGNED_DEPOSIT, account, signature, 3 * DEAL)
    assert (await scanner(drig).scan()).unassigned == 0  # recorded once

    assigned = drig.execute(c.AssignDeposit(finding.finding_id))
    repeat = drig.execute(c.AssignDeposit(finding.finding_id))

    assert (assigned.transfer_id, assigned.status, assigned.replayed) == (
        deposit_id(signature, account), "settled", False)
    assert (repeat.transfer_id, repeat.replayed) == (assigned.transfer_id, True)
    assert drig.ledger.balance(account) == 13 * DEAL == await drig.chain_balance(account)
    drig.execute(c.ConnectWallet(account, stranger.address))  # connected afterwards:
    forget_cursors(drig)
    assert (await scanner(drig).scan()).credited == 0  # still credited once
    assert drig.ledger.balance(account) == 13 * DEAL


async def test_assigning_again_with_another_reason_is_a_conflict(drig: SettlementRig) -> None:
    """As for every command (and a return): the same request replays, another
    one under the same finding is refused, naming what differs; a credit the
    scan made answers any assignment (test below)."""
    account = await account_with_address(drig)
    stranger = wallet(drig)
    stranger.deposit(drig.chain.token_account_address(account), DEAL)
    await scanner(drig).scan()
    (finding,) = deposit_findings(drig)
    drig.execute(c.AssignDeposit(finding.finding_id, "found the sender"))

    with pytest.raises(IdempotencyConflict, match="a different 'reason'"):
        drig.execute(c.AssignDeposit(finding.finding_id, "another story"))
    with pytest.raises(IdempotencyConflict):
        drig.execute(c.AssignDeposit(finding.finding_id))
    assert drig.execute(c.AssignDeposit(finding.finding_id, "found the sender")).replayed

    stranger.deposit(drig.chain.token_account_address(account), DEAL)
    await scanner(drig).scan()
    second = next(f for f in deposit_findings(drig) if f.adjusted_by is None)
    drig.execute(c.AssignDeposit(second.finding_id))  # no reason: a default is stored
    assert drig.execute(c.AssignDeposit(second.finding_id)).replayed
    with pytest.raises(IdempotencyConflict):
        drig.execute(c.AssignDeposit(second.finding_id, "a reason now"))
    assert drig.ledger.balance(account) == 12 * DEAL


async def test_an_unassigned_deposit_is_not_also_adjusted_as_a_balance_mismatch(
    drig: SettlementRig,
) -> None:
    """The stranger's deposit is in the token account before anyone assigns
    it, so a reconciliation also sees it as a balance mismatch: adjusting
    that (a mint) and then assigning the deposit would credit it twice."""
    account = await account_with_address(drig)
    stranger = wallet(drig)
    stranger.deposit(drig.chain.token_account_address(account), 3 * DEAL)
    await scanner(drig).scan()
    (finding,) = deposit_findings(drig)
    report = await drig.reconcile()
    mismatch = next(row for row in report.mismatches if row.account_id == account)

    with pytest.raises(FindingNotAdjustable, match=str(finding.finding_id)):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch.finding_id, INTERNAL)
    drig.execute(c.AssignDeposit(finding.finding_id))

    assert drig.ledger.balance(account) == 13 * DEAL == await drig.chain_balance(account)
    assert clean_but_the_faucet(await drig.reconcile())


async def mismatch_of(rig: SettlementRig, account: UUID) -> UUID:
    report = await rig.reconcile()
    return next(row.finding_id for row in report.mismatches if row.account_id == account)


async def test_a_mismatch_read_before_the_scan_took_a_deposit_waits_for_it(
    drig: SettlementRig,
) -> None:
    """A reconciliation that runs before the scan took a deposit (not yet
    at the commitment, or the scan not run since) sees it as a balance
    mismatch: adjusting that (a mint) and then crediting the deposit would
    credit it twice, so the adjustment waits for the scan, after which the
    finding is stale."""
    account = await account_with_address(drig)
    outside = wallet(drig)
    drig.execute(c.ConnectWallet(account, outside.address))
    outside.deposit(drig.chain.token_account_address(account), 5 * DEAL)
    mismatch = await mismatch_of(drig, account)

    with pytest.raises(FindingNotAdjustable, match="deposit scan"):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch, INTERNAL)
    assert (await scanner(drig).scan()).credited == 1
    with pytest.raises(FindingNotAdjustable, match="stale"):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch, INTERNAL)

    assert drig.ledger.balance(account) == 15 * DEAL == await drig.chain_balance(account)
    assert clean_but_the_faucet(await drig.reconcile())


async def test_a_strangers_deposit_read_before_the_scan_is_assigned_not_adjusted(
    drig: SettlementRig,
) -> None:
    account = await account_with_address(drig)
    wallet(drig).deposit(drig.chain.token_account_address(account), 3 * DEAL)
    mismatch = await mismatch_of(drig, account)

    with pytest.raises(FindingNotAdjustable, match="deposit scan"):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch, INTERNAL)
    await scanner(drig).scan()
    (finding,) = deposit_findings(drig)
    with pytest.raises(FindingNotAdjustable, match="unassigned deposits"):
        adjust_for_finding(drig.fold, drig.ledger.writer, mismatch, INTERNAL)
    drig.execute(c.AssignDeposit(finding.finding_id))

    assert drig.ledger.balance(account) == 13 * DEAL == await drig.chain_balance(account)


async def test_a_wallet_of_another_account_is_a_stranger_here(drig: SettlementRig) -> None:
    account = await account_with_address(drig)
    other = drig.open_account()
    outside = wallet(drig)
    drig.execute(c.ConnectWallet(other, outside.address))
    outside.deposit(drig.chain.token_account_address(account), 2 * DEAL)

    report = await scanner(drig).scan()

    assert (report.credited, report.unassigned) == (0, 1)
    assert drig.ledger.balance(account) == 10 * DEAL
    assert drig.ledger.balance(other) == 0


async def test_a_wallet_connected_after_its_finding_resolves_it_by_the_credit(
    sqlite_rig: SettlementRig,
) -> None:
    """A rescan after the wallet was connected credits the deposit and marks
    its finding resolved by that credit: assigning it answers that credit."""
    rig = sqlite_rig
    account = await account_with_address(rig)
    outside = wallet(rig)
    signature = outside.deposit(rig.chain.token_account_address(account), DEAL).signature
    await scanner(rig).scan()
    rig.execute(c.ConnectWallet(account, outside.address))
    forget_cursors(rig)

    assert (await scanner(rig).scan()).credited == 1

    assigned = rig.execute(c.AssignDeposit(deposit_finding_id(signature, account)))
    assert (assigned.transfer_id, assigned.replayed) == (deposit_id(signature, account), True)
    assert rig.ledger.balance(account) == 11 * DEAL


async def test_ledger_movements_and_other_mints_are_not_deposits(
    sqlite_rig: SettlementRig,
) -> None:
    rig = sqlite_rig
    account = await account_with_address(rig)
    receiver = rig.open_account()
    rig.execute(c.TransferFunds(uuid4(), account, receiver,
                                DEAL, "a ledger movement"))
    await rig.settle()

    report = await scanner(rig).scan()

    assert report.signatures >= 3
    assert (report.credited, report.unassigned) == (0, 0)


@pytest.mark.parametrize("point", ["before_credit", "before_cursor"])
@pytest.mark.parametrize("connected", [True, False], ids=["wallet", "stranger"])
async def test_a_scan_crashed_anywhere_takes_each_deposit_once(
    drig: SettlementRig, point: str, connected: bool,
) -> None:
    account = await account_with_address(drig)
    outside = wallet(drig)
    if connected:
        drig.execute(c.ConnectWallet(account, outside.address))
    address = drig.chain.token_account_address(account)
    signatures = [outside.deposit(address, amount * DEAL).signature for amount in (1, 2)]
    crashed: list[str] = []

    def crash(deposit) -> None:
        if deposit.signature not in crashed:
            crashed.append(deposit.signature)
            raise SimulatedCrash(point)

    for _ in range(len(signatures)):
        with pytest.raises(SimulatedCrash):
            await scanner(drig, DepositHooks(**{point: crash})).scan()
        await drig.restart()
    report = await scanner(drig).scan()

    assert crashed == signatures
    expected = 13 * DEAL if connected else 10 * DEAL
    assert drig.ledger.balance(account) == expected
    findings = deposit_findings(drig)
    assert len(findings) == (0 if connected else 2)
    assert report.credited + report.unassigned <= (2 if point == "before_credit" else 0)
    for signature in signatures:
        if connected:
            assert drig.transfer(deposit_id(signature, account)).kind == DEPOSIT


async def test_a_history_longer_than_the_page_bound_is_scanned_in_full(
    drig: SettlementRig,
) -> None:
    """One scan lists at most ``pages_per_scan`` pages; a history longer
    than that (a deposit buried under dust sent while the settler was down)
    is listed across scans, and the cursor never moves past what was not
    scanned: every deposit is credited, the oldest included."""
    account = await account_with_address(drig)
    outside = wallet(drig)
    drig.execute(c.ConnectWallet(account, outside.address))
    address = drig.chain.token_account_address(account)
    amounts = [DEAL * n for n in range(1, 8)]
    for amount in amounts:
        outside.deposit(address, amount)
    bounded = DepositScanner(
        writer=drig.ledger.writer, fold=drig.fold, chain=drig.chain,
        config=DepositConfig(retry=FAST_RETRY, signatures_per_page=2, pages_per_scan=2))

    for _ in range(len(amounts) * 3):
        report = await bounded.scan()
        if report.signatures == 0 and not drig.store.deposit_resume(account):
            break

    assert drig.ledger.balance(account) == 10 * DEAL + sum(amounts)
    assert drig.ledger.balance(account) == await drig.chain_balance(account)
    assert (await scanner(drig).scan()).credited == 0


async def test_the_scan_only_takes_the_configured_commitment(sqlite_rig: SettlementRig) -> None:
    """A transaction the chain reports below the commitment stops the scan
    of its account there; later ones wait behind it."""
    rig = sqlite_rig
    account = await account_with_address(rig)
    outside = wallet(rig)
    rig.execute(c.ConnectWallet(account, outside.address))
    outside.deposit(rig.chain.token_account_address(account), DEAL)
    real = rig.chain.signature_statuses

    async def only_confirmed(signatures):
        from dataclasses import replace

        found = await real(signatures)
        return {s: None if st is None else replace(st, confirmation="confirmed")
                for s, st in found.items()}

    rig.chain.signature_statuses = only_confirmed  # type: ignore[method-assign]
    assert (await scanner(rig).scan()).credited == 0
    assert rig.ledger.balance(account) == 10 * DEAL
    del rig.chain.signature_statuses
    assert (await scanner(rig).scan()).credited == 1


async def test_a_frozen_accounts_deposit_waits_as_a_finding(sqlite_rig: SettlementRig) -> None:
    rig = sqlite_rig
    account = await account_with_address(rig)
    outside = wallet(rig)
    rig.execute(c.ConnectWallet(account, outside.address))
    rig.execute(c.FreezeAccount(account))
    outside.deposit(rig.chain.token_account_address(account), DEAL)

    report = await scanner(rig).scan()

    assert (report.credited, report.unassigned) == (0, 1)
    (finding,) = deposit_findings(rig)
    assert "frozen" in finding.detail
    with pytest.raises(LedgerError):
        rig.execute(c.AssignDeposit(finding.finding_id))  # still frozen
    rig.execute(c.UnfreezeAccount(account))
    assert rig.execute(c.AssignDeposit(finding.finding_id)).status == "settled"
    assert rig.ledger.balance(account) == 11 * DEAL


async def test_both_stores_credit_once_and_record_strangers_once(rig: SettlementRig) -> None:
    """The same on every settlement store (SQLite and PostgreSQL): a
    connected wallet's deposit credited once through a crash after the
    credit and a rescan from nothing, a stranger's recorded once."""
    account = await account_with_address(rig)
    mine, stranger = wallet(rig), wallet(rig)
    rig.execute(c.ConnectWallet(account, mine.address))
    address = rig.chain.token_account_address(account)
    mine.deposit(address, 4 * DEAL)
    stranger.deposit(address, DEAL)

    def crash(deposit) -> None:
        raise SimulatedCrash("before_cursor")

    with pytest.raises(SimulatedCrash):
        await scanner(rig, DepositHooks(before_cursor=crash)).scan()
    await rig.restart()
    first = await scanner(rig).scan()
    forget_cursors(rig)
    again = await scanner(rig).scan()

    assert (first.credited, first.unassigned, again.credited, again.unassigned) == (0, 1, 0, 0)
    assert rig.ledger.balance(account) == 14 * DEAL
    assert len(deposit_findings(rig)) == 1


async def rotate_the_owner(rig: SettlementRig) -> None:
    """``custody rotate owner``: every custody token account moves to a new
    owner key, and the rig's adapter signs (and reads) with it from then on."""
    new = CustodyKey(Keypair())
    rig.fold.catch_up()
    await rotate_owner(rig.chain, new.pubkey, rig.accounts, TREASURY_ID)  # type: ignore[arg-type]
    keys = CustodyKeys(rig.custody, owner=new)
    if rig.chain_kind == "litesvm":  # closing it would close the embedded chain too
        rig.chain = LiteSvmChain(rig.embedded, keys)
    else:
        assert rig.server is not None
        await rig.chain.close()
        rig.chain = RpcChain(rig.server.url, keys, transport_retries_max=0)
    rig.process = rig._new_process()
    assert rig.chain.token_account_owner == str(new.pubkey)


async def test_the_ledgers_movements_before_an_owner_rotation_are_never_deposits(
    drig: SettlementRig,
) -> None:
    """Movements the old owner key signed come from custody token accounts
    the current owner key did not own then: read again from nothing after
    the rotation (a new cursor, a lost one), they are still the ledger's own,
    neither credited nor recorded as unassigned deposits an admin could
    assign (which would create DEAL out of an internal movement)."""
    account = await account_with_address(drig)
    receiver = drig.open_account(funded=DEAL)
    drig.execute(c.TransferFunds(uuid4(), account, receiver, 2 * DEAL, "before the rotation"))
    await drig.settle()
    await rotate_the_owner(drig)
    forget_cursors(drig)

    report = await scanner(drig).scan()

    assert report.signatures >= 3
    assert (report.credited, report.unassigned) == (0, 0)
    assert deposit_findings(drig) == []
    assert (drig.ledger.balance(account), drig.ledger.balance(receiver)) == (8 * DEAL, 3 * DEAL)
    drig.execute(c.TransferFunds(uuid4(), receiver, account, DEAL, "after the rotation"))
    await drig.settle()
    forget_cursors(drig)
    assert (await scanner(drig).scan()).unassigned == 0
    assert await drig.chain_balance(account) == drig.ledger.balance(account) == 9 * DEAL


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def open_deposits_gauge(rig: SettlementRig) -> float | None:
    """``deals_ledger_deposits_unassigned_open`` as a scrape reads it."""
    collector = SettlementLiveness()
    collector.watch(StoreLiveness(None, rig.fold))  # type: ignore[arg-type] - no lease read
    return next((family.samples[0].value for family in collector.collect()
                 if family.name == "deals_ledger_deposits_unassigned_open"), None)


async def test_deposits_are_counted_and_an_open_unassigned_one_alerts(
    drig: SettlementRig, raised,
) -> None:
    """The credited and the unassigned are counted, the open ones are a
    gauge read from the store, and an open unassigned deposit alerts once
    (not again at every scan while it stays open) until assigned."""
    account = await account_with_address(drig)
    friend, stranger = wallet(drig), wallet(drig)
    drig.execute(c.ConnectWallet(account, friend.address))
    address = drig.chain.token_account_address(account)
    credited, unassigned = (counted("deals_ledger_deposits_credited_total"),
                            counted("deals_ledger_deposits_unassigned_total"))
    friend.deposit(address, DEAL)
    stranger.deposit(address, 2 * DEAL)
    scan = scanner(drig)

    await scan.scan()
    await scan.scan()

    assert counted("deals_ledger_deposits_credited_total") == credited + 1
    assert counted("deals_ledger_deposits_unassigned_total") == unassigned + 1
    (finding,) = deposit_findings(drig)
    assert open_deposits_gauge(drig) == 1
    (alert,) = raised.of(AlertKind.UNASSIGNED_DEPOSIT)
    assert (alert.fields["open"], alert.fields["findings"], alert.fields["accounts"]) == (
        1, str(finding.finding_id), str(account))

    drig.execute(c.AssignDeposit(finding.finding_id))
    await scan.scan()

    assert open_deposits_gauge(drig) == 0
    assert len(raised.of(AlertKind.UNASSIGNED_DEPOSIT)) == 1
