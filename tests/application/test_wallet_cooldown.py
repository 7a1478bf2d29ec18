"""The cool-down of new withdrawal addresses (DEALS_WITHDRAWAL_WALLET_COOLDOWN_S),
on both stores, with the processor's clock moved by hand: a wallet connected
(or connected again) less than the cool-down ago receives no withdrawal,
and the refusal says when it may; from then on it does."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair

from application import commands as c
from application.handlers.rules import Rules
from domain.errors import WalletCoolingDown
from tests.support.ledgers import LedgerHarness, SettableClock

HOUR_S = 3600
DEAL = 10**8


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def cooled(store, clock) -> Iterator[LedgerHarness]:
    ledger = LedgerHarness(store.env, clock=clock, rules=Rules(wallet_cooldown_s=HOUR_S))
    yield ledger
    ledger.close()


def connected(ledger: LedgerHarness) -> tuple[UUID, str]:
    account = ledger.open_account(funded=10 * DEAL)
    address = str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(account, address))
    return account, address


def withdraw(ledger: LedgerHarness, account: UUID, address: str):
    return ledger.execute(c.Withdraw(uuid4(), account, DEAL, address))


def test_a_new_wallet_receives_nothing_until_its_cool_down_has_passed(cooled, clock):
    account, address = connected(cooled)
    clock.advance(HOUR_S - 2)
    with pytest.raises(WalletCoolingDown) as refusal:
        withdraw(cooled, account, address)
    refused = refusal.value
    assert refused.retry_after_s == 2 and refused.headers == {"Retry-After": "2"}
    assert "retry in 2 s" in refused.message and address in refused.message
    assert "from 2026-01-01T01:00:00" in refused.message  # connected at 00:00, plus an hour
    assert cooled.balance(account) == 10 * DEAL
    clock.advance(2)
    assert withdraw(cooled, account, address).source_balance == 9 * DEAL


def test_connecting_again_starts_the_cool_down_again(cooled, clock):
    account, address = connected(cooled)
    clock.advance(HOUR_S)
    cooled.execute(c.DisconnectWallet(account, address))
    cooled.execute(c.ConnectWallet(account, address))
    clock.advance(HOUR_S - 1)
    with pytest.raises(WalletCoolingDown):
        withdraw(cooled, account, address)
    clock.advance(1)
    assert withdraw(cooled, account, address).source_balance == 9 * DEAL


def test_a_repeat_of_an_accepted_withdrawal_is_answered_whatever_the_cool_down(store, clock):
    """The cool-down decides new withdrawals only: a retry of one accepted
    before is its first answer, as for a since disconnected wallet."""
    ledger = LedgerHarness(store.env, clock=clock)
    try:
        account, address = connected(ledger)
        command = c.Withdraw(uuid4(), account, DEAL, address)
        first = ledger.execute(command)
        ledger.processor.rules = Rules(wallet_cooldown_s=HOUR_S)
        again = ledger.execute(command)
        assert again.replayed and again.source_balance == first.source_balance == 9 * DEAL
    finally:
        ledger.close()


def test_without_a_cool_down_a_new_wallet_receives_at_once(ledger):
    account, address = connected(ledger)
    assert withdraw(ledger, account, address).source_balance == 9 * DEAL


def test_a_clock_stepped_back_never_makes_the_wait_longer_than_the_cool_down(store, clock):
    """A connection stamped after the processor's now (an NTP step back,
    another writer host's clock behind): with no cool-down the withdrawal
    goes; with one, the wait is at most the cool-down, not the skew more."""
    for cooldown_s in (0, HOUR_S):
        ledger = LedgerHarness(store.env, clock=clock, rules=Rules(wallet_cooldown_s=cooldown_s))
        try:
            account, address = connected(ledger)
            clock.advance(-30)
            if cooldown_s == 0:
                assert withdraw(ledger, account, address).source_balance == 9 * DEAL
                continue
            with pytest.raises(WalletCoolingDown) as refusal:
                withdraw(ledger, account, address)
            assert refusal.value.retry_after_s == HOUR_S
        finally:
            ledger.close()
        clock.advance(30)
