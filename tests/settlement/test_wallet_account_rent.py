"""What a client can cost the fee payer in wallets' token account rent, on
the embedded chain and through the JSON-RPC adapter, on both stores.

A withdrawal creates its wallet's associated token account when missing,
the fee payer paying the rent, but a wallet can close it for that rent and
a fresh wallet costs nothing: connect one, withdraw a unit, deposit it back,
close the account, next (found by a reviewer: 20 wallets connected at once,
one cool-down waited, 40.7M lamports). The fee payer creates accounts for
the first ``DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX`` wallets of a ledger
account only; a deposit return creates no account at all (it pays into the
token account the deposit came from)."""

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
from domain.system import deposit_finding_id
from interface.chain import transactions as tx
from tests.settlement.conftest import DEAL, SettlementRig
from tests.settlement.test_deposit_returns import FeePayerSpending
from tests.settlement.test_deposits import (
    account_with_address,
    deposit_findings,
    scanner,
)
from tests.settlement.test_deposits import wallet as outside_wallet
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


async def test_strangers_returned_deposits_cost_the_fee_payer_no_rent(
    chain_rig: SettlementRig,
) -> None:
    """The reviewer's loop: a fresh wallet sends 1 base unit from its
    associated token account to a deposit address and closes that account;
    an admin returns the deposit. The return created the account again,
    ~2,034,280 lamports of the fee payer's a time, unbounded; now it pays
    into the account the deposit came from, finds it closed, fails saying
    so and reopens the finding: fees only, whatever the bound (0 here)."""
    rig = chain_rig
    rig.config = replace(rig.config, wallet_account_creations_max=0)
    await rig.restart()
    account = await account_with_address(rig)
    returns, findings = [], []
    async with FeePayerSpending(rig) as spending:
        for _ in range(3):
            stranger = outside_wallet(rig, funded=1)
            associated = stranger.open_associated_account(1)
            signature = stranger.deposit(rig.chain.token_account_address(account), 1,
                                         source=associated).signature
            stranger.close_token_account(associated)
            await scanner(rig).scan()
            findings.append(deposit_finding_id(signature, account))
            returns.append(rig.execute(c.ReturnDeposit(findings[-1])).transfer_id)
            await rig.settle()

    spending.assert_fees_only()  # was 3 x 2,039,280 lamports of rent more
    for returned in returns:
        undone = rig.transfer(rig.transfer(returned).reversed_by)
        assert "deposit_source_account_missing" in undone.reason
    reopened = {row.finding_id: row.adjusted_by for row in deposit_findings(rig)}
    assert [reopened[finding] for finding in findings] == [None] * 3
    assert rig.ledger.balance(account) == 10 * DEAL
    assert await rig.chain_balance(account) == 10 * DEAL + 3
