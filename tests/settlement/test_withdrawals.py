"""Withdrawals on chain, embedded and through the JSON-RPC adapter: the
tokens land on the wallet's associated token account (created by the fee
payer when missing), exactly once through a crash at every step, and the
reconciliation stays clean; one the chain refuses is compensated back. The
fee payer pays a wallet's account once, and a refused withdrawal costs the
movements packed with it no fee."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application import commands as c
from benchmarks.chain_cost import settlement_cost
from domain.system import EXTERNAL_ID, TREASURY_ID
from interface.chain import transactions as tx
from tests.settlement.conftest import DEAL, SettlementRig
from tests.settlement.test_crash import CRASH_POINTS, crash_at, settle_through_crashes
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio


def connected(rig: SettlementRig, funded: int) -> tuple[UUID, str]:
    """A funded account with a fresh wallet connected to it."""
    account = rig.open_account(funded)
    wallet = str(Keypair().pubkey())
    rig.execute(c.ConnectWallet(account, wallet))
    return account, wallet


def wallet_balance(rig: SettlementRig, wallet: str) -> int | None:
    """The wallet's DEAL on chain (its associated token account); None
    while that account does not exist."""
    mint = Pubkey.from_string(rig.chain.mint_address)
    found = rig.embedded.get_account(tx.associated_token_address(wallet, mint))
    return None if found is None else tx.decode_token_account(bytes(found.data)).amount


async def test_a_withdrawal_lands_on_the_wallets_associated_token_account(
    chain_rig: SettlementRig,
) -> None:
    rig = chain_rig
    account, wallet = connected(rig, 10 * DEAL)
    first, second = uuid4(), uuid4()
    rig.execute(c.Withdraw(first, account, 3 * DEAL, wallet))
    assert rig.ledger.balance(account) == 7 * DEAL and wallet_balance(rig, wallet) is None

    await rig.settle()
    rig.execute(c.Withdraw(second, account, 2 * DEAL, wallet))  # its account exists now
    await rig.settle()

    assert wallet_balance(rig, wallet) == 5 * DEAL
    assert rig.ledger.balance(EXTERNAL_ID) == 5 * DEAL
    assert rig.transfer(first).signature is not None and rig.transfer(first).slot
    await rig.assert_each_settled_once([first, second])
    await rig.assert_chain_matches_ledger()
    external_on_chain = rig.chain_supply() - sum(
        [await rig.chain_balance(held) for held in rig.accounts])
    assert external_on_chain == rig.ledger.balance(EXTERNAL_ID)
    assert (await rig.reconcile(full=True)).clean


async def test_withdrawals_and_transfers_pack_together(chain_rig: SettlementRig) -> None:
    rig = chain_rig
    account, wallet = connected(rig, 10 * DEAL)
    other = rig.open_account()
    ids = [uuid4() for _ in range(6)]
    for index, transfer_id in enumerate(ids):
        if index % 2:
            rig.execute(c.TransferFunds(transfer_id, account, other, DEAL))
        else:
            rig.execute(c.Withdraw(transfer_id, account, DEAL, wallet))

    await rig.settle()

    assert wallet_balance(rig, wallet) == 3 * DEAL
    await rig.assert_each_settled_once(ids)
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile(full=True)).clean


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_at_each_step_withdraws_exactly_once(
    chain_rig: SettlementRig, point: str
) -> None:
    rig = chain_rig
    account, wallet = connected(rig, 10 * DEAL)
    ids = [uuid4() for _ in range(3)]
    for transfer_id in ids:
        rig.execute(c.Withdraw(transfer_id, account, 2 * DEAL, wallet))
    crashed = crash_at(rig, point, times=2)

    crashes = await settle_through_crashes(rig)

    assert crashes == 2 and len(crashed) == 2
    assert wallet_balance(rig, wallet) == 6 * DEAL
    await rig.assert_each_settled_once(ids)
    await rig.assert_chain_matches_ledger()
    assert (await rig.reconcile(full=True)).clean


async def test_a_withdrawal_the_chain_refuses_is_compensated_back(
    chain_rig: SettlementRig,
) -> None:
    """The custody token account frozen on chain (by the freeze authority):
    the transfer fails, the ledger gives the amount back to the account."""
    rig = chain_rig
    account, wallet = connected(rig, 10 * DEAL)
    await rig.settle()
    rig.embedded.freeze_token_account(rig.custody, rig.address(account))
    withdrawal = uuid4()
    rig.execute(c.Withdraw(withdrawal, account, 4 * DEAL, wallet))

    await rig.settle()

    assert rig.transfer(withdrawal).status == "reversed"
    assert rig.ledger.balance(account) == 10 * DEAL and rig.ledger.balance(EXTERNAL_ID) == 0
    assert not wallet_balance(rig, wallet)


async def test_a_withdrawal_with_netting_on_reaches_the_wallet_not_a_burn(
    store: StoreConfig, tmp_path: Path,
) -> None:
    """Netting rebuilt each movement from its source, destination and amount
    and dropped ``destination_wallet``: a withdrawal was signed as a burn,
    recorded settled, and the reconciliation (custody accounts only) stayed
    clean (found by a reviewer)."""
    rig = SettlementRig(store, tmp_path, netting_window_s=0.0)
    try:
        await rig.settle()
        account, wallet = connected(rig, 10 * DEAL)
        await rig.settle()
        supply = rig.chain_supply()
        rig.execute(c.Withdraw(uuid4(), account, 3 * DEAL, wallet))
        await rig.settle()
        assert wallet_balance(rig, wallet) == 3 * DEAL
        assert rig.chain_supply() == supply
    finally:
        await rig.close()


# --- the associated token account's rent, paid once per wallet ----------------

_CLOSE_ACCOUNT = 9  # the SPL Token program's CloseAccount


def wallet_lamports(rig: SettlementRig, wallet: Keypair) -> int:
    found = rig.embedded.get_account(wallet.pubkey())
    return 0 if found is None else found.lamports


def cash_out(rig: SettlementRig, wallet: Keypair, account: UUID) -> None:
    """The drain's client half: send every unit of the wallet's associated
    token account back to the account's token account (a deposit), then
    close it, collecting its rent; nothing when it does not exist."""
    mint = Pubkey.from_string(rig.chain.mint_address)
    owned = tx.associated_token_address(str(wallet.pubkey()), mint)
    units = wallet_balance(rig, str(wallet.pubkey()))
    if units is None:
        return
    instructions = [tx.transfer_checked_instruction(wallet.pubkey(), owned, rig.address(account),
                                                    units, mint)] if units else []
    close = Instruction(tx.TOKEN_PROGRAM_ID, bytes([_CLOSE_ACCOUNT]), [
        AccountMeta(owned, False, True), AccountMeta(wallet.pubkey(), False, True),
        AccountMeta(wallet.pubkey(), True, False)])
    blockhash, _ = rig.embedded.latest_blockhash()
    message = Message.new_with_blockhash([*instructions, close], wallet.pubkey(), blockhash)
    outcome = rig.embedded.process(Transaction([wallet], message, blockhash))
    assert outcome.landed is not None and outcome.landed.error is None, outcome


async def test_closing_the_wallets_token_account_again_and_again_drains_no_sol(
    chain_rig: SettlementRig,
) -> None:
    """Withdraw one unit, close the associated token account to collect its
    rent, deposit the unit back, repeat: each cycle took ~2,034,280 lamports
    from the fee payer (found by a reviewer). The ledger pays a wallet's
    account once, through a restart and a rebuild of the settlement store;
    the next withdrawal fails and is given back, saying why."""
    rig = chain_rig
    account = rig.open_account(10 * DEAL)
    wallet = Keypair()
    rig.embedded.fund(wallet.pubkey(), 10**9)
    rig.execute(c.ConnectWallet(account, str(wallet.pubkey())))
    first, second = uuid4(), uuid4()
    rig.execute(c.Withdraw(first, account, 1, str(wallet.pubkey())))
    await rig.settle()
    assert rig.transfer(first).status == "settled"
    cash_out(rig, wallet, account)  # the one account the ledger pays for
    rig.store.reset()
    await rig.restart()
    before = wallet_lamports(rig, wallet)

    rig.execute(c.Withdraw(second, account, 1, str(wallet.pubkey())))
    await rig.settle()
    cash_out(rig, wallet, account)

    assert wallet_lamports(rig, wallet) - before <= 0  # was +2,034,280: the rent less one fee
    assert rig.transfer(second).status == "reversed"
    compensation = rig.transfer(rig.transfer(second).reversed_by)
    assert "wallet_token_account_missing" in compensation.reason
    assert "must create its associated token account itself" in compensation.reason
    assert wallet_balance(rig, str(wallet.pubkey())) is None


# --- a refused movement packed with others -------------------------------------
# It costs the others no fee (found by a reviewer): the whole transaction used
# to be refused and every movement signed again alone, one fee each (up to ~15
# extra fees for one bad withdrawal). The simulation that measures compute
# units finds the refused one first: the movements before it go packed, it
# goes alone and fails alone, those after it go packed again. Fees are read as
# ``benchmarks/chain_cost.py`` reads them.

_SET_AUTHORITY = 6
_ACCOUNT_OWNER = 2


def wallet_account_given_away(rig: SettlementRig) -> str:
    """A wallet that created its associated token account itself, then made
    another key its owner (SetAuthority): creating it again (idempotently)
    is refused by the associated token account program, so a withdrawal to
    that wallet never lands."""
    wallet = Keypair()
    rig.embedded.fund(wallet.pubkey(), 10**9)
    mint = Pubkey.from_string(rig.chain.mint_address)
    owned = tx.associated_token_address(str(wallet.pubkey()), mint)
    create = tx.create_associated_account_instruction(wallet.pubkey(), str(wallet.pubkey()), mint)
    give = Instruction(
        tx.TOKEN_PROGRAM_ID,
        bytes([_SET_AUTHORITY, _ACCOUNT_OWNER, 1]) + bytes(Keypair().pubkey()),
        [AccountMeta(owned, False, True), AccountMeta(wallet.pubkey(), True, False)])
    blockhash, _ = rig.embedded.latest_blockhash()
    message = Message.new_with_blockhash([create, give], wallet.pubkey(), blockhash)
    outcome = rig.embedded.process(Transaction([wallet], message, blockhash))
    assert outcome.landed is not None and outcome.landed.error is None, outcome
    return str(wallet.pubkey())


async def test_one_refused_withdrawal_costs_the_others_no_extra_fee(
    chain_rig: SettlementRig,
) -> None:
    rig = chain_rig
    account, other = rig.open_account(20 * DEAL), rig.open_account()
    await rig.settle()  # both token accounts exist: every transfer below is cheap
    wallet = wallet_account_given_away(rig)
    rig.execute(c.ConnectWallet(account, wallet))
    transfers = [uuid4() for _ in range(8)]
    bad = uuid4()
    for transfer_id in transfers[:4]:
        rig.execute(c.TransferFunds(transfer_id, account, other, DEAL))
    rig.execute(c.Withdraw(bad, account, DEAL, wallet))
    for transfer_id in transfers[4:]:
        rig.execute(c.TransferFunds(transfer_id, account, other, DEAL))
    before = settlement_cost(rig.embedded, rig.custody.pubkey)

    await rig.settle()

    spent = settlement_cost(rig.embedded, rig.custody.pubkey)
    assert rig.transfer(bad).status == "reversed"
    assert all(rig.transfer(transfer_id).status == "settled" for transfer_id in transfers)
    assert spent.transactions - before.transactions == 2  # was 8: each transfer alone
    assert spent.fee_lamports - before.fee_lamports == 2 * tx.LAMPORTS_PER_SIGNATURE
    await rig.assert_each_settled_once(transfers)
    await rig.assert_chain_matches_ledger()


async def test_a_refused_first_movement_goes_alone_and_the_rest_packed(
    chain_rig: SettlementRig,
) -> None:
    rig = chain_rig
    account, other = rig.open_account(20 * DEAL), rig.open_account()
    await rig.settle()
    wallet = wallet_account_given_away(rig)
    rig.execute(c.ConnectWallet(account, wallet))
    bad = uuid4()
    rig.execute(c.Withdraw(bad, account, DEAL, wallet))
    transfers: list[UUID] = [uuid4() for _ in range(5)]
    for transfer_id in transfers:
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, other, DEAL))
    before = settlement_cost(rig.embedded, rig.custody.pubkey)

    await rig.settle()

    spent = settlement_cost(rig.embedded, rig.custody.pubkey)
    assert rig.transfer(bad).status == "reversed"
    assert spent.transactions - before.transactions == 1
    await rig.assert_each_settled_once(transfers)
