"""What a client can cost the fee payer in wallets' token account rent, on
the embedded chain and through the JSON-RPC adapter, on both stores.

A withdrawal creates its wallet's associated token account when missing,
the fee payer paying the rent, but a wallet can close it for that rent and
a fresh wallet costs nothing: connect one, withdraw a unit, deposit it back,
close the account, next (found by a reviewer: 20 wallets connected at once,
one cool-down waited, 40.7M lamports). The fee payer creates accounts for
the first ``DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX`` wallets of a ledger
account only; a deposit return always creates the stranger's account."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application import commands as c
from application.settlement.wallet_accounts import CREATIONS_MAX_DEFAULT
from domain.system import DEPOSIT_FINDINGS_RUN_ID
from interface.chain import transactions as tx
from tests.settlement.conftest import DEAL, SettlementRig
from tests.settlement.test_deposits import scanner
from tests.settlement.test_withdrawals import cash_out, wallet_balance, wallet_lamports

pytestmark = pytest.mark.anyio

SEED_LAMPORTS = 100_000
"""What the client gives each fresh wallet for its own fees."""


def fresh_wallet(rig: SettlementRig, account: UUID) -> Keypair:
    wallet = Keypair()
    rig.embedded.fund(wallet.pubkey(), SEED_LAMPORTS)
    rig.execute(c.ConnectWallet(account, str(wallet.pubkey())))
    return wallet


def create_own_account(rig: SettlementRig, wallet: Keypair) -> None:
    """The wallet creates its associated token account itself, paying the rent."""
    rig.embedded.fund(wallet.pubkey(), 10**9)
    mint = Pubkey.from_string(rig.chain.mint_address)
    create = tx.create_associated_account_instruction(wallet.pubkey(), str(wallet.pubkey()), mint)
    blockhash, _ = rig.embedded.latest_blockhash()
    message = Message.new_with_blockhash([create], wallet.pubkey(), blockhash)
    outcome = rig.embedded.process(Transaction([wallet], message, blockhash))
    assert outcome.landed is not None and outcome.landed.error is None, outcome


def assert_given_back_for_a_missing_account(rig: SettlementRig, withdrawal: UUID) -> None:
    assert rig.transfer(withdrawal).status == "reversed"
    reason = rig.transfer(rig.transfer(withdrawal).reversed_by).reason
    assert "wallet_token_account_missing" in reason
    assert f"at most {CREATIONS_MAX_DEFAULT} wallets of an account" in reason
    assert "must create its associated token account itself" in reason


async def test_fresh_wallets_gain_a_client_at_most_the_bound_in_rent(
    chain_rig: SettlementRig,
) -> None:
    """The reviewer's cycle with one wallet more than the bound, the store
    rebuilt from the log and the settler restarted before the last."""
    rig = chain_rig
    rent = rig.embedded.rent_lamports().token_account
    account = rig.open_account(10 * DEAL)
    gained, withdrawals = 0, []
    for index in range(CREATIONS_MAX_DEFAULT + 1):
        if index == CREATIONS_MAX_DEFAULT:
            rig.store.reset()
            await rig.restart()
        wallet = fresh_wallet(rig, account)
        withdrawals.append(uuid4())
        rig.execute(c.Withdraw(withdrawals[-1], account, 1, str(wallet.pubkey())))
        await rig.settle()
        cash_out(rig, wallet, account)
        gained += wallet_lamports(rig, wallet) - SEED_LAMPORTS

    assert gained <= CREATIONS_MAX_DEFAULT * rent  # was 4 x 2,034,280
    assert all(rig.transfer(w).status == "settled" for w in withdrawals[:-1])
    assert_given_back_for_a_missing_account(rig, withdrawals[-1])
    create_own_account(rig, wallet)  # past the bound, a wallet with its account is paid
    again = uuid4()
    rig.execute(c.Withdraw(again, account, 1, str(wallet.pubkey())))
    await rig.settle()
    assert rig.transfer(again).status == "settled" and wallet_balance(
        rig, str(wallet.pubkey())) == 1
    await scanner(rig).scan()  # the units the wallets sent back are credited
    assert rig.ledger.balance(account) == 10 * DEAL - 1 == await rig.chain_balance(account)


async def test_wallets_withdrawn_to_at_once_get_the_bound_of_accounts(
    chain_rig: SettlementRig,
) -> None:
    """Connected together and withdrawn to in one round (one transaction):
    the first wallets in log order get their account, the rest are given
    back; another ledger account has its own bound."""
    rig = chain_rig
    account, other = rig.open_account(10 * DEAL), rig.open_account(10 * DEAL)
    wallets = [fresh_wallet(rig, account) for _ in range(CREATIONS_MAX_DEFAULT + 2)]
    others = fresh_wallet(rig, other)
    withdrawals = [uuid4() for _ in wallets]
    for withdrawal, wallet in zip(withdrawals, wallets, strict=True):
        rig.execute(c.Withdraw(withdrawal, account, DEAL, str(wallet.pubkey())))
    rig.execute(c.Withdraw(uuid4(), other, DEAL, str(others.pubkey())))

    await rig.settle()

    balances = [wallet_balance(rig, str(wallet.pubkey())) for wallet in [*wallets, others]]
    assert balances == [DEAL] * CREATIONS_MAX_DEFAULT + [None, None, DEAL]
    for withdrawal in withdrawals[CREATIONS_MAX_DEFAULT:]:
        assert_given_back_for_a_missing_account(rig, withdrawal)
    assert rig.ledger.balance(account) == (10 - CREATIONS_MAX_DEFAULT) * DEAL
    await rig.assert_chain_matches_ledger([account, other])


async def test_a_return_creates_the_account_the_wallet_closed(chain_rig: SettlementRig) -> None:
    """The sender's account was paid once by a withdrawal and closed when it
    sent DEAL by mistake to another account's deposit address: the return
    creates it again, whatever the bound (0 here) and outside the count of
    the account it comes from (it used to fail, wallet_token_account_missing,
    and the deposit could never be returned)."""
    rig = chain_rig
    paid_from, received = rig.open_account(10 * DEAL), rig.open_account(10 * DEAL)
    sender = fresh_wallet(rig, paid_from)
    rig.execute(c.Withdraw(uuid4(), paid_from, 3 * DEAL, str(sender.pubkey())))
    await rig.settle()
    rig.execute(c.DisconnectWallet(paid_from, str(sender.pubkey())))
    cash_out(rig, sender, received)  # the deposit by mistake, closing the account
    await scanner(rig).scan()
    rig.fold.catch_up()
    (finding,) = rig.store.findings(DEPOSIT_FINDINGS_RUN_ID, 10)
    rig.config = replace(rig.config, wallet_account_creations_max=0)
    await rig.restart()

    returned = rig.execute(c.ReturnDeposit(finding.finding_id)).transfer_id
    await rig.settle()

    assert rig.transfer(returned).status == "settled"
    assert wallet_balance(rig, str(sender.pubkey())) == 3 * DEAL
    assert rig.ledger.balance(received) == 10 * DEAL == await rig.chain_balance(received)
    assert rig.store.first_wallets_withdrawn_to(received, CREATIONS_MAX_DEFAULT) == set()
