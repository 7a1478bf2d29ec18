"""The fee payer's SOL, on the embedded chain and through the JSON-RPC
adapter: drained, settlement pauses (nothing signed, nothing failed) with
the gauge, the alert and the recorded state saying why; funded, everything
settles exactly once. A send the chain refuses because the fee payer cannot
pay the rent of an account it creates fails no movement either."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY
from solders.keypair import Keypair

from application import commands as c
from application.alerts import AlertKind
from application.settlement.chain_port import FeePayerUnfundedError
from application.settlement.fee_payer import recorded_state
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from interface.chain import transactions as tx
from tests.settlement.conftest import SettlementRig
from tests.support.stores import sqlite_store

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL
SOL = 10**9


@pytest.fixture(params=["litesvm", "rpc"])
async def funded_rig(request, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    """A settled genesis on a chain whose fee payer only has what a test gives it."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, chain_kind=request.param,
                        faucet=False)
    try:
        fund(rig, 10 * SOL)
        await rig.settle()
        yield rig
    finally:
        await rig.close()


def fund(rig: SettlementRig, lamports: int) -> None:
    rig.embedded.fund(rig.custody.pubkey, lamports)


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


def record_transfers(rig: SettlementRig, count: int) -> list[UUID]:
    accounts = [rig.open_account() for _ in range(2)]
    transfer_ids = [uuid4() for _ in range(count)]
    for index, transfer_id in enumerate(transfer_ids):
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, accounts[index % 2], DEAL))
    return transfer_ids


async def test_a_drained_fee_payer_pauses_settlement_until_funded(
    funded_rig: SettlementRig, raised
) -> None:
    rig = funded_rig
    transfer_ids = record_transfers(rig, 5)
    fund(rig, 1_000)  # not even one fee
    signatures_before = await rig.chain.signatures_for_account(TREASURY_ID)

    for _ in range(3):  # paused, step after step, and says why
        with pytest.raises(FeePayerUnfundedError, match="holds 1000 lamports"):
            await rig.process.step()

    assert gauge("deals_ledger_fee_payer_lamports") == 1_000
    funds = await rig.chain.fee_payer_funds()
    assert gauge("deals_ledger_fee_payer_needed_lamports") == funds.needed_lamports
    assert funds.needed_lamports > funds.reserve_lamports + tx.LAMPORTS_PER_SIGNATURE
    alerts = raised.of(AlertKind.FEE_PAYER_LOW)
    assert [alert.summary.split(":")[0] for alert in alerts] == [
        "the fee payer's SOL is below the alert threshold", "settlement paused"]
    assert alerts[0].fields["address"] == str(rig.custody.pubkey)
    state = recorded_state(rig.store)
    assert state is not None and state["paused"] and state["low"] and state["lamports"] == 1_000
    assert await rig.chain.signatures_for_account(TREASURY_ID) == signatures_before
    for transfer_id in transfer_ids:
        transfer = rig.transfer(transfer_id)
        assert transfer.settlement_status not in ("failed", "settled"), transfer_id
        assert transfer.signature is None, transfer_id

    fund(rig, 10 * SOL)
    await rig.settle()

    await rig.assert_each_settled_once(transfer_ids)
    await rig.assert_chain_matches_ledger()
    state = recorded_state(rig.store)
    assert state is not None and not state["paused"]
    latest = rig.process.fee_payer.latest  # read before the last round signed
    assert latest is not None and latest.funds.lamports > 9 * SOL
    assert gauge("deals_ledger_fee_payer_lamports") == latest.funds.lamports


async def test_a_refusal_for_the_fee_payers_rent_fails_no_movement(
    funded_rig: SettlementRig,
) -> None:
    """Funded when checked, drained before the send (another spender): the
    chain refuses the account's creation with the System Program's
    ``Custom(1)``, an instruction error that must not fail the movement."""
    rig = funded_rig
    newcomer = rig.open_account()
    transfer_id = uuid4()
    rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, newcomer, DEAL))
    funds = await rig.chain.fee_payer_funds()
    fee_only = funds.reserve_lamports + tx.LAMPORTS_PER_SIGNATURE  # not the new account's rent
    drained = await _step_with_fee_payer_left(rig, fee_only)

    transfer = rig.transfer(transfer_id)
    assert drained and transfer.settlement_status not in ("failed", "settled")
    assert transfer.signature == drained[0]  # still the submission in force

    fund(rig, 10 * SOL)
    await rig.settle()
    await rig.assert_each_settled_once([transfer_id])
    await rig.assert_chain_matches_ledger()


async def test_at_the_bound_the_fee_payer_pays_every_account_a_transaction_creates(
    funded_rig: SettlementRig,
) -> None:
    """Six withdrawals to new wallets fit one transaction and create six
    associated token accounts; the bound counted four (the ledger's own
    token accounts only), so a fee payer holding what it said was needed
    could not pay them (found by a reviewer). One lamport below the bound
    settlement pauses; at the bound that transaction lands whole."""
    rig = funded_rig
    account = rig.open_account(DEAL)
    await rig.settle()
    withdrawals = [uuid4() for _ in range(6)]  # as many as one transaction carries
    rig.process.config = replace(  # one account's six wallets get their accounts
        rig.process.config, wallet_account_creations_max=len(withdrawals))
    for withdrawal in withdrawals:
        wallet = str(Keypair().pubkey())
        rig.execute(c.ConnectWallet(account, wallet))
        rig.execute(c.Withdraw(withdrawal, account, 1, wallet))
    needed = (await rig.chain.fee_payer_funds()).needed_lamports
    fund(rig, needed - 1)
    with pytest.raises(FeePayerUnfundedError):
        await rig.process.step()
    fund(rig, needed)
    sent: list[tuple[UUID, ...]] = []
    rig.hooks.before_send = lambda signed: sent.append(signed.transfer_ids)

    await rig.settle()

    assert sent == [tuple(withdrawals)]  # one transaction, six accounts created
    await rig.assert_each_settled_once(withdrawals)


async def test_the_fee_payer_short_of_a_wallets_account_rent_fails_no_withdrawal(
    funded_rig: SettlementRig,
) -> None:
    """The associated token account program creates the wallet's account
    through the System Program: the fee payer short of its rent fails the
    ATA instruction with ``Custom(1)``, which was read as the withdrawal's
    fault and failed it (found by a reviewer). It pauses instead."""
    rig = funded_rig
    account = rig.open_account(DEAL)
    await rig.settle()
    wallet = str(Keypair().pubkey())
    rig.execute(c.ConnectWallet(account, wallet))
    withdrawal = uuid4()
    rig.execute(c.Withdraw(withdrawal, account, DEAL, wallet))
    funds = await rig.chain.fee_payer_funds()
    short = funds.reserve_lamports + tx.LAMPORTS_PER_SIGNATURE + 1_000_000  # < 2,039,280 rent
    drained = await _step_with_fee_payer_left(rig, short)

    transfer = rig.transfer(withdrawal)
    assert drained and transfer.settlement_status not in ("failed", "settled")
    assert transfer.signature == drained[0] and transfer.status == "pending"
    fund(rig, 10 * SOL)
    await rig.settle()
    await rig.assert_each_settled_once([withdrawal])
    assert rig.ledger.balance(account) == 0


def _few_polls(rig: SettlementRig):
    return replace(rig.config, polls_per_step_max=3)


async def test_anchoring_signs_nothing_while_the_fee_payer_cannot_pay(
    funded_rig: SettlementRig,
) -> None:
    from application.settlement.anchoring import AnchorConfig, AnchorProcess
    from domain.anchor import anchor_id
    from tests.settlement.conftest import FAST_RETRY

    rig = funded_rig
    anchors = AnchorProcess(
        writer=rig.ledger.writer, app=rig.ledger.app, chain=rig.chain,
        config=AnchorConfig(every_events=1, poll_interval_s=0.005, retry=FAST_RETRY),
        fee_payer=rig.process.fee_payer)
    fund(rig, 1_000)

    with pytest.raises(FeePayerUnfundedError):
        await anchors.step()
    assert rig.ledger.app.load(anchor_id(1)) is None  # nothing recorded, nothing signed

    fund(rig, 10 * SOL)
    await anchors.run_until_idle()
    first = rig.ledger.app.load(anchor_id(1))
    assert first is not None and first.confirmed


async def _step_with_fee_payer_left(rig, lamports: int) -> list[str]:
    """One settlement step whose first send finds the fee payer left with
    ``lamports`` (drained just before it goes out); the signatures drained at."""
    drained: list[str] = []

    def drain_once(signed) -> None:
        if not drained:
            drained.append(signed.signature)
            fund(rig, lamports)

    rig.hooks.before_send = drain_once
    rig.process.config = rig.config = _few_polls(rig)
    await rig.process.step()
    return drained
