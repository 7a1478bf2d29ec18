"""Reconciliation finds what happened on chain behind the ledger's back,
records each finding as an event, a report entry and a metric, corrects
nothing, and an admin's adjustment referencing a finding makes it clean."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from solders.account import Account

from application import commands as c
from application.authority import INTERNAL
from application.settlement.reconciler import (
    Reconciler,
    ReconciliationConfig,
    adjust_for_finding,
    latest_reconciliation,
)
from domain.amounts import UNITS_PER_DEAL
from domain.errors import FindingNotAdjustable, FindingNotFound, IdempotencyConflict
from domain.reconciliation import (
    BALANCE_MISMATCH,
    MISSING_ON_CHAIN,
    UNKNOWN_SIGNATURE,
    Finding,
)
from domain.system import GENESIS_MINT_ID, TREASURY_ID
from interface.chain import transactions as tx
from tests.settlement.conftest import FAST_RETRY, SettlementRig

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


def metric(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def balance_findings(report) -> dict[UUID, tuple[int | None, int | None]]:
    return {
        f.account_id: (f.expected, f.actual) for f in report.mismatches
        if f.kind == BALANCE_MISMATCH and f.account_id is not None
    }


async def test_a_transfer_behind_the_services_back_is_reported_then_adjusted(
    rig: SettlementRig,
) -> None:
    alice = rig.open_account(10 * DEAL)
    await rig.settle()
    assert (await rig.reconcile()).clean
    behind = rig.embedded.transfer_directly(
        rig.custody, rig.address(TREASURY_ID), rig.address(alice), 7 * DEAL
    )
    assert behind.landed is not None
    ledger_before = rig.ledger.balance(alice)

    report = await rig.reconcile()

    treasury = rig.ledger.balance(TREASURY_ID)
    assert balance_findings(report) == {
        TREASURY_ID: (treasury, treasury - 7 * DEAL), alice: (10 * DEAL, 17 * DEAL),
    }
    assert [(f.kind, f.signature) for f in report.unmatched_signatures] == [
        (UNKNOWN_SIGNATURE, behind.signature)
    ]
    assert "no memo" in report.unmatched_signatures[0].detail
    assert rig.ledger.balance(alice) == ledger_before  # nothing silently corrected
    assert metric("reconciliation_mismatches") == 2
    assert metric("reconciliation_unmatched_signatures") == 1
    for finding in [*report.mismatches, *report.unmatched_signatures]:
        recorded = rig.ledger.app.repository.get(finding.finding_id)
        assert isinstance(recorded, Finding)
        assert recorded.reconciliation_id == report.reconciliation_id
    assert latest_reconciliation(rig.fold) == report

    for finding in report.mismatches:
        moved = adjust_for_finding(rig.fold, rig.ledger.writer, finding.finding_id, INTERNAL)
        assert moved.kind == ("mint" if finding.account_id == alice else "burn")
        assert rig.transfer(moved.transfer_id).adjusts == finding.finding_id
        assert rig.transfer(moved.transfer_id).status == "settled"  # true on chain already

    assert rig.ledger.balance(alice) == 17 * DEAL
    again = await rig.reconcile()
    assert again.clean, again
    assert metric("reconciliation_mismatches") == 0
    full = await rig.reconcile(full=True)  # the whole history again: the signature stays unknown
    assert [f.signature for f in full.unmatched_signatures] == [behind.signature]
    assert not full.mismatches


async def test_tampering_with_a_token_accounts_balance_is_reported(rig: SettlementRig) -> None:
    alice = rig.open_account(10 * DEAL)
    await rig.settle()
    address = rig.address(alice)
    account = rig.embedded.get_account(address)
    assert account is not None
    data = bytearray(bytes(account.data))
    data[64:72] = (3 * DEAL).to_bytes(8, "little")  # the SPL token account's amount
    rig.embedded.set_account(address, Account(account.lamports, bytes(data), account.owner))
    assert tx.token_account_amount(bytes(data)) == 3 * DEAL

    report = await rig.reconcile()

    assert balance_findings(report) == {alice: (10 * DEAL, 3 * DEAL)}
    assert report.unmatched_signatures == []  # no transaction did it
    assert report.mismatches[0].detail.startswith(f"token account {address} holds")


async def test_adjustments_happen_once_and_never_from_a_stale_finding(rig: SettlementRig) -> None:
    alice = rig.open_account(10 * DEAL)
    await rig.settle()
    rig.embedded.transfer_directly(rig.custody, rig.address(TREASURY_ID), rig.address(alice), 5)
    first = await rig.reconcile()
    second = await rig.reconcile()
    finding = next(f for f in first.mismatches if f.account_id == alice)
    same_later = next(f for f in second.mismatches if f.account_id == alice)

    moved = adjust_for_finding(rig.fold, rig.ledger.writer, finding.finding_id, INTERNAL)
    again = adjust_for_finding(rig.fold, rig.ledger.writer, finding.finding_id, INTERNAL)

    assert again.replayed and again == replace(moved, replayed=True)  # exactly the first answer
    with pytest.raises(IdempotencyConflict, match=f"finding_id {finding.finding_id} was first "
                                                  "used with a different 'reason'"):
        adjust_for_finding(rig.fold, rig.ledger.writer, finding.finding_id, INTERNAL, "another")
    with pytest.raises(FindingNotAdjustable, match="stale"):
        adjust_for_finding(rig.fold, rig.ledger.writer, same_later.finding_id, INTERNAL)
    unknown = next(iter(first.unmatched_signatures))
    with pytest.raises(FindingNotAdjustable):
        rig.execute(c.AdjustForFinding(unknown.finding_id))
    with pytest.raises(FindingNotFound):
        adjust_for_finding(rig.fold, rig.ledger.writer, uuid4(), INTERNAL)
    assert rig.ledger.balance(alice) == 10 * DEAL + 5


async def test_settlements_missing_on_chain_are_reported(rig: SettlementRig, tmp_path) -> None:
    """The chain's files are lost (or the endpoint is another cluster):
    what the log settled is not there."""
    alice = rig.open_account(2 * DEAL)
    await rig.settle()
    rig.chain_dir = tmp_path / "another-chain"
    await rig.restart()
    await rig.process.prepare()

    report = await rig.reconcile()

    missing = {f.transfer_id for f in report.mismatches if f.kind == MISSING_ON_CHAIN}
    funding = rig.transfer(next(iter(missing)))
    assert len(missing) >= 2 and funding.status == "settled"
    assert balance_findings(report)[alice] == (2 * DEAL, 0)


async def test_accounts_and_signatures_are_read_in_pages(rig: SettlementRig) -> None:
    accounts = [rig.open_account(DEAL) for _ in range(7)]
    await rig.settle()

    report = await rig.reconcile(accounts_page=2)

    assert report.clean
    assert report.checked_accounts == len(accounts) + 2  # and the treasury and rewards


async def test_progress_is_told_the_accounts_checked_after_each_page(rig: SettlementRig) -> None:
    for _ in range(5):
        rig.open_account(DEAL)
    await rig.settle()
    told: list[int] = []
    reconciler = Reconciler(
        writer=rig.ledger.writer, fold=rig.fold, chain=rig.chain,
        config=ReconciliationConfig(accounts_page=2, retry=FAST_RETRY), progress=told.append,
    )
    report = await reconciler.run(full=True)
    assert told == [2, 4, 6, 7] and report.checked_accounts == 7  # with treasury and rewards


async def test_a_run_in_flight_counts_a_landed_submission_as_in_flight(
    rig: SettlementRig,
) -> None:
    """Settled balances and chain balances read while a submission is in
    flight (recorded, landed, not yet marked settled) agree."""
    alice = rig.open_account()
    await rig.settle()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
    reports = []

    async def reconcile_now(signed) -> None:
        reports.append(await rig.reconcile())

    rig.hooks.before_confirm = reconcile_now
    await rig.settle()

    assert reports and all(report.clean for report in reports)
    assert rig.transfer(transfer_id).status == "settled"


class _SettlerStepsDuringEachRead:
    """The reconciler's chain: while it reads a balance, the settler takes a
    step (records, sends, confirms, marks settled), as a busy settler on a
    busy machine does between the reconciler's reads of the store and of the
    chain."""

    def __init__(self, rig: SettlementRig, steps_per_read: int = 1,
                 only: UUID | None = None) -> None:
        self._rig = rig
        # one round a step: each step settles one round's submissions (a step
        # chains rounds while they confirm, and would empty the queue at once)
        rig.process.config = replace(rig.process.config, rounds_per_step_max=1)
        self._steps_per_read = steps_per_read
        self._only = only
        self.steps = 0

    def __getattr__(self, name: str):
        return getattr(self._rig.chain, name)

    async def token_balance(self, account_id: UUID) -> int | None:
        if self._only in (None, account_id):
            for _ in range(self._steps_per_read):
                self.steps += await self._rig.process.step()
        return await self._rig.chain.token_balance(account_id)


async def test_a_settler_stepping_during_every_read_makes_no_false_finding(
    store, tmp_path,
) -> None:
    """Settlement never stands still while an account is read: every reading
    straddles a settled submission, yet the chain agrees with the log and the
    report is clean (a reconciliation never reports a movement in flight).
    Two movements a transaction: enough submissions to straddle the reads."""
    rig = SettlementRig(store, tmp_path, batch_movements=2)
    try:
        alice = rig.open_account()
        await rig.settle()
        for amount in range(1, 25):
            rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, alice, amount * 1000 + amount))
        chain = _SettlerStepsDuringEachRead(rig)
        reconciler = Reconciler(
            writer=rig.ledger.writer, fold=rig.fold, chain=chain,  # type: ignore[arg-type]
            config=ReconciliationConfig(accounts_page=500, retry=FAST_RETRY),
        )

        report = await reconciler.run()

        assert chain.steps > 2, "the settler never stepped during a read: the test proves nothing"
        assert report.clean, report.mismatches
        await rig.settle()
        assert (await rig.reconcile()).clean
    finally:
        await rig.close()


async def test_the_genesis_on_chain_before_its_settlement_is_recorded_is_no_finding(
    rig: SettlementRig,
) -> None:
    """A settler starting mints the initial supply on chain (``prepare``)
    and records that as the genesis settlement only in a later step; a run
    in between sees the supply and its transaction, neither yet in the
    settlement store, and reports neither (nor skips them for good: the
    signature is judged once the settlement is recorded)."""
    await rig.process.prepare()
    assert await rig.chain_balance(TREASURY_ID) > 0
    rig.fold.catch_up()
    genesis = rig.fold.store.movement(GENESIS_MINT_ID)
    assert genesis is not None and genesis.status != "settled"

    assert (await rig.reconcile()).clean

    await rig.settle()
    report = await rig.reconcile()
    assert report.clean
    assert report.checked_signatures >= 1


async def test_a_reading_too_much_settled_during_stops_the_run_never_guesses(
    store, tmp_path,
) -> None:
    """More submissions on the account settled during each chain read than a
    reading can weigh: the run stops unavailable (reconcile again later)
    rather than record a finding an admin could adjust."""
    from application.errors import SettlementUnavailable
    from application.settlement.balance_reading import CHANGES_MAX
    from application.settlement.reconciler import STABLE_READS_MAX

    rig = SettlementRig(store, tmp_path, batch_movements=1)
    try:
        alice = rig.open_account()
        await rig.settle()
        per_read = CHANGES_MAX + 1
        for amount in range(1, per_read * (STABLE_READS_MAX + 1) + 2):
            rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, alice, amount))
        chain = _SettlerStepsDuringEachRead(rig, steps_per_read=per_read, only=alice)

        async def no_wait(_: float) -> None:
            return None

        reconciler = Reconciler(
            writer=rig.ledger.writer, fold=rig.fold, chain=chain,  # type: ignore[arg-type]
            config=ReconciliationConfig(retry=FAST_RETRY), sleep=no_wait,
        )
        with pytest.raises(SettlementUnavailable, match="kept moving"):
            await reconciler.run()
        assert chain.steps >= per_read * STABLE_READS_MAX
    finally:
        await rig.close()
