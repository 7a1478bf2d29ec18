"""Every command and its refusals, on SQLite and PostgreSQL.

Each refusal is also checked to leave no trace: the log does not grow.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from uuid import uuid4

import pytest
from solders.keypair import Keypair

from application import commands as c
from application.authority import INTERNAL
from application.handlers.holds import HOLD_EXPIRY_S_DEFAULT
from domain import errors
from domain.amounts import INITIAL_SUPPLY, SUPPLY_MAX, UNITS_PER_DEAL
from domain.pricing import PRICES_DEFAULT
from domain.system import ISSUANCE_ID, REWARDS_FUNDING, REWARDS_ID, TREASURY_ID

DEAL = UNITS_PER_DEAL


@contextmanager
def refused(ledger, error_type):
    """The command is refused with ``error_type`` and writes nothing."""
    before = ledger.app.event_log.head()
    with pytest.raises(error_type) as caught:
        yield caught
    assert ledger.app.event_log.head() == before


# Genesis


def test_genesis_mints_the_supply_to_the_treasury_and_funds_rewards(ledger):
    assert ledger.balance(ISSUANCE_ID) == -INITIAL_SUPPLY
    assert ledger.balance(TREASURY_ID) == INITIAL_SUPPLY - REWARDS_FUNDING
    assert ledger.balance(REWARDS_ID) == REWARDS_FUNDING


def test_genesis_again_changes_nothing(ledger):
    before = ledger.app.event_log.head()
    ledger.execute(c.Genesis())
    assert ledger.app.event_log.head() == before
    assert ledger.balance(ISSUANCE_ID) == -INITIAL_SUPPLY


# Accounts


def test_open_account_answers_with_its_position_and_a_retry_changes_nothing(ledger):
    account_id = uuid4()
    first = ledger.execute(c.OpenAccount(account_id))
    again = ledger.execute(c.OpenAccount(account_id))
    assert first.position == again.position == ledger.app.event_log.head()
    assert (first.replayed, again.replayed) == (False, True)
    assert ledger.app.account(account_id).balance == 0


def test_only_user_accounts_can_be_opened(ledger):
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.OpenAccount(uuid4(), "treasury"))


def test_an_id_used_by_a_transfer_cannot_open_an_account(ledger):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, 1))
    with refused(ledger, errors.IdempotencyConflict):
        ledger.execute(c.OpenAccount(transfer_id))


def test_a_frozen_account_can_neither_send_nor_receive_until_unfrozen(ledger):
    frozen, other = ledger.open_account(DEAL), ledger.open_account(DEAL)
    ledger.execute(c.FreezeAccount(frozen))
    with refused(ledger, errors.AccountFrozen):
        ledger.execute(c.TransferFunds(uuid4(), frozen, other, 1))
    with refused(ledger, errors.AccountFrozen):
        ledger.execute(c.TransferFunds(uuid4(), other, frozen, 1))
    with refused(ledger, errors.AccountFrozen):
        ledger.execute(c.ChargeFee(uuid4(), frozen, "search"))
    ledger.execute(c.UnfreezeAccount(frozen))
    ledger.execute(c.TransferFunds(uuid4(), frozen, other, 1))
    assert ledger.balance(other) == DEAL + 1


def test_freezing_twice_writes_once(ledger):
    account = ledger.open_account()
    assert ledger.execute(c.FreezeAccount(account)).replayed is False
    before = ledger.app.event_log.head()
    assert ledger.execute(c.FreezeAccount(account)).replayed is True
    assert ledger.app.event_log.head() == before


def test_system_accounts_cannot_be_frozen(ledger):
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.FreezeAccount(TREASURY_ID))


def test_freezing_an_unknown_account_is_account_not_found(ledger):
    with refused(ledger, errors.AccountNotFound):
        ledger.execute(c.FreezeAccount(uuid4()))


# Transfers


def test_transfer_moves_the_exact_amount_and_answers_both_balances(ledger):
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    outcome = ledger.execute(c.TransferFunds(uuid4(), source, destination, 1, "tip"))
    assert (outcome.source_balance, outcome.destination_balance) == (10 * DEAL - 1, 1)
    assert (ledger.balance(source), ledger.balance(destination)) == (10 * DEAL - 1, 1)
    assert outcome.position == ledger.app.event_log.head()
    assert outcome.status == "pending"


def test_a_retried_transfer_returns_the_first_outcome_and_writes_nothing(ledger):
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    command = c.TransferFunds(uuid4(), source, destination, 3 * DEAL, "rent")
    first = ledger.execute(command)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, DEAL))
    before = ledger.app.event_log.head()
    again = ledger.execute(command)
    assert ledger.app.event_log.head() == before
    assert again.replayed and again.position == first.position
    assert (again.source_balance, again.destination_balance) == (7 * DEAL, 3 * DEAL)
    assert ledger.balance(destination) == 4 * DEAL


def test_the_same_id_with_another_request_is_an_idempotency_conflict(ledger):
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, DEAL))
    with refused(ledger, errors.IdempotencyConflict):
        ledger.execute(c.TransferFunds(transfer_id, source, destination, 2 * DEAL))
    with refused(ledger, errors.IdempotencyConflict):
        ledger.execute(c.ChargeFee(transfer_id, source, "search"))


def test_a_retry_after_a_restart_is_answered_from_the_log(ledger, store):
    """Another process (or this one after a restart) never saw the id in its
    cache; the retry must still replay, even though the balance that allowed
    the first attempt is gone."""
    from tests.support.ledgers import LedgerHarness

    source, destination = ledger.open_account(5 * DEAL), ledger.open_account()
    command = c.TransferFunds(uuid4(), source, destination, 5 * DEAL)
    first = ledger.execute(command)
    restarted = LedgerHarness(store.env)
    try:
        before = restarted.app.event_log.head()
        again = restarted.execute(command)
        assert again.replayed and again.position == first.position
        assert restarted.app.event_log.head() == before
        with refused(restarted, errors.IdempotencyConflict):
            restarted.execute(c.TransferFunds(command.transfer_id, source, destination, 1))
    finally:
        restarted.close()


@pytest.mark.parametrize("amount", [0, -1, 10**30])
def test_an_amount_outside_the_bounds_is_invalid_amount(ledger, amount):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    with refused(ledger, errors.InvalidAmount):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, amount))


def test_a_transfer_above_the_available_balance_is_refused(ledger):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, DEAL + 1))
    assert ledger.balance(source) == DEAL


def test_a_transfer_to_the_same_account_is_refused(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.SameAccount):
        ledger.execute(c.TransferFunds(uuid4(), account, account, 1))


def test_a_transfer_naming_an_unknown_account_is_refused(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.AccountNotFound):
        ledger.execute(c.TransferFunds(uuid4(), account, uuid4(), 1))
    with refused(ledger, errors.AccountNotFound):
        ledger.execute(c.TransferFunds(uuid4(), uuid4(), account, 1))


@pytest.mark.parametrize("reason", ["a\nb", "x\x00", "\u202eevil", "r" * 501, 7])
def test_a_reason_with_control_characters_or_too_long_is_refused(ledger, reason):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 1, reason))


def test_unicode_reasons_are_kept_verbatim(ledger):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, 1, "café ☕ 取引"))
    assert ledger.app.transfer(transfer_id).reason == "café ☕ 取引"


# Batches


def test_a_non_atomic_batch_answers_each_item(ledger):
    source, destination = ledger.open_account(2 * DEAL), ledger.open_account()
    items = (
        c.TransferFunds(uuid4(), source, destination, DEAL),
        c.TransferFunds(uuid4(), source, destination, 5 * DEAL),
        c.TransferFunds(uuid4(), source, destination, DEAL),
    )
    outcome = ledger.execute(c.TransferBatch(items, atomic=False))
    assert [type(r.error) if r.error else None for r in outcome.results] == [
        None, errors.InsufficientBalance, None]
    assert ledger.balance(destination) == 2 * DEAL
    assert outcome.position == ledger.app.event_log.head()


def test_an_atomic_batch_with_one_bad_item_applies_nothing(ledger):
    source, destination = ledger.open_account(2 * DEAL), ledger.open_account()
    items = (
        c.TransferFunds(uuid4(), source, destination, DEAL),
        c.TransferFunds(uuid4(), source, destination, DEAL),
        c.TransferFunds(uuid4(), source, destination, DEAL),
    )
    with refused(ledger, errors.LedgerError) as caught:
        ledger.execute(c.TransferBatch(items, atomic=True))
    assert caught.value.code == "insufficient_balance" and caught.value.index == 2
    assert (ledger.balance(source), ledger.balance(destination)) == (2 * DEAL, 0)
    for item in items:
        assert ledger.app.load(item.transfer_id) is None


def test_an_atomic_batch_applies_all_items_together(ledger):
    source, destination = ledger.open_account(3 * DEAL), ledger.open_account()
    items = tuple(c.TransferFunds(uuid4(), source, destination, DEAL) for _ in range(3))
    outcome = ledger.execute(c.TransferBatch(items, atomic=True))
    assert all(r.error is None for r in outcome.results)
    assert ledger.balance(destination) == 3 * DEAL


def test_a_batch_repeating_an_id_replays_it_instead_of_moving_twice(ledger):
    source, destination = ledger.open_account(3 * DEAL), ledger.open_account()
    item = c.TransferFunds(uuid4(), source, destination, DEAL)
    outcome = ledger.execute(c.TransferBatch((item, item), atomic=True))
    assert [r.outcome.replayed for r in outcome.results] == [False, True]
    assert ledger.balance(destination) == DEAL


def test_a_batch_is_bounded(ledger):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    with pytest.raises(errors.InvalidRequest):
        c.TransferBatch(tuple(c.TransferFunds(uuid4(), source, destination, 1)
                              for _ in range(c.BATCH_ITEMS_MAX + 1)))
    with pytest.raises(errors.InvalidRequest):
        c.TransferBatch(())


# Allowances


def test_a_spender_moves_within_its_allowance_which_it_lowers(ledger):
    owner, agent, shop = ledger.open_account(10 * DEAL), ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, agent, 3 * DEAL))
    ledger.execute(c.TransferFrom(uuid4(), agent, owner, shop, 2 * DEAL))
    assert ledger.app.account(owner).allowance_for(agent) == DEAL
    with refused(ledger, errors.AllowanceExceeded):
        ledger.execute(c.TransferFrom(uuid4(), agent, owner, shop, DEAL + 1))
    assert ledger.balance(shop) == 2 * DEAL


def test_setting_an_allowance_replaces_it_and_zero_revokes(ledger):
    owner, agent, shop = ledger.open_account(10 * DEAL), ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, agent, 3 * DEAL))
    ledger.execute(c.SetAllowance(owner, agent, DEAL))
    assert ledger.app.account(owner).allowance_for(agent) == DEAL
    ledger.execute(c.SetAllowance(owner, agent, 0))
    with refused(ledger, errors.AllowanceExceeded):
        ledger.execute(c.TransferFrom(uuid4(), agent, owner, shop, 1))


def test_setting_the_same_allowance_again_writes_nothing(ledger):
    owner, agent = ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, agent, DEAL))
    before = ledger.app.event_log.head()
    assert ledger.execute(c.SetAllowance(owner, agent, DEAL)).replayed
    assert ledger.app.event_log.head() == before


def test_an_allowance_does_not_lift_the_owners_balance_limit(ledger):
    owner, agent, shop = ledger.open_account(DEAL), ledger.open_account(), ledger.open_account()
    ledger.execute(c.SetAllowance(owner, agent, 5 * DEAL))
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.TransferFrom(uuid4(), agent, owner, shop, 2 * DEAL))
    assert ledger.app.account(owner).allowance_for(agent) == 5 * DEAL


def test_an_account_is_not_its_own_spender(ledger):
    owner, shop = ledger.open_account(DEAL), ledger.open_account()
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.SetAllowance(owner, owner, DEAL))
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.TransferFrom(uuid4(), owner, owner, shop, 1))


# Fees and prices


@pytest.mark.parametrize("service_type", sorted(PRICES_DEFAULT))
def test_a_fee_moves_the_default_price_to_the_treasury(ledger, service_type):
    account = ledger.open_account(10 * DEAL)
    treasury_before = ledger.balance(TREASURY_ID)
    outcome = ledger.execute(c.ChargeFee(uuid4(), account, service_type))
    assert outcome.amount == PRICES_DEFAULT[service_type]
    assert ledger.balance(TREASURY_ID) == treasury_before + PRICES_DEFAULT[service_type]
    assert ledger.balance(account) == 10 * DEAL - PRICES_DEFAULT[service_type]


def test_an_unknown_service_type_is_refused(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.UnknownServiceType):
        ledger.execute(c.ChargeFee(uuid4(), account, "teleport"))


def test_a_fee_the_account_cannot_pay_is_refused(ledger):
    account = ledger.open_account(PRICES_DEFAULT["goal"] - 1)
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.ChargeFee(uuid4(), account, "goal"))


def test_a_price_rule_applies_within_its_window_only(ledger):
    account = ledger.open_account(10 * DEAL)
    now = ledger.clock.now
    ledger.execute(c.SetPriceRule("search", 2 * DEAL, now, now.replace(year=now.year + 1)))
    assert ledger.execute(c.ChargeFee(uuid4(), account, "search")).amount == 2 * DEAL
    ledger.clock.advance(400 * 24 * 3600)
    assert ledger.execute(c.ChargeFee(uuid4(), account, "search")).amount == PRICES_DEFAULT["search"]


def test_a_fee_keeps_the_price_it_was_charged_at(ledger):
    account = ledger.open_account(10 * DEAL)
    command = c.ChargeFee(uuid4(), account, "analysis")
    first = ledger.execute(command)
    ledger.execute(c.SetPriceRule("analysis", 3 * DEAL))
    assert ledger.execute(command).amount == first.amount == PRICES_DEFAULT["analysis"]


def test_a_price_rule_must_have_a_positive_cost_and_a_sane_window(ledger):
    now = ledger.clock.now
    with refused(ledger, errors.InvalidAmount):
        ledger.execute(c.SetPriceRule("search", 0))
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.SetPriceRule("search", DEAL, now, now))
    with refused(ledger, errors.UnknownServiceType):
        ledger.execute(c.SetPriceRule("teleport", DEAL))


def test_setting_the_same_price_rule_twice_writes_once(ledger):
    ledger.execute(c.SetPriceRule("goal", 2 * DEAL))
    before = ledger.app.event_log.head()
    assert ledger.execute(c.SetPriceRule("goal", 2 * DEAL)).replayed
    assert ledger.app.event_log.head() == before


# Holds


def test_a_hold_reserves_the_service_price_and_a_partial_capture_releases_the_rest(ledger):
    account = ledger.open_account(10 * DEAL)
    hold_id = uuid4()
    placed = ledger.execute(c.PlaceHold(hold_id, account, service_type="goal"))
    assert placed.amount == PRICES_DEFAULT["goal"]
    assert placed.available == 10 * DEAL - PRICES_DEFAULT["goal"]
    treasury_before = ledger.balance(TREASURY_ID)
    captured = ledger.execute(c.CaptureHold(hold_id, DEAL // 4))
    assert captured.amount == DEAL // 4
    stored = ledger.app.account(account)
    assert (stored.balance, stored.held) == (10 * DEAL - DEAL // 4, 0)
    assert ledger.balance(TREASURY_ID) == treasury_before + DEAL // 4


def test_held_funds_are_not_available_for_transfers(ledger):
    account, other = ledger.open_account(DEAL), ledger.open_account()
    ledger.execute(c.PlaceHold(uuid4(), account, amount=DEAL // 2))
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), account, other, DEAL // 2 + 1))


def test_a_capture_above_the_held_amount_is_refused(ledger):
    account = ledger.open_account(10 * DEAL)
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, account, amount=DEAL))
    with refused(ledger, errors.InvalidAmount):
        ledger.execute(c.CaptureHold(hold_id, DEAL + 1))


def test_void_releases_and_the_hold_is_then_not_pending(ledger):
    account = ledger.open_account(DEAL)
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, account, amount=DEAL))
    ledger.execute(c.VoidHold(hold_id))
    assert ledger.app.account(account).available == DEAL
    assert ledger.execute(c.VoidHold(hold_id)).replayed
    with refused(ledger, errors.HoldNotPending):
        ledger.execute(c.CaptureHold(hold_id))


def test_a_repeated_capture_replays_and_a_different_one_is_refused(ledger):
    account = ledger.open_account(10 * DEAL)
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, account, amount=DEAL))
    first = ledger.execute(c.CaptureHold(hold_id))
    again = ledger.execute(c.CaptureHold(hold_id))
    assert again.replayed and again.position == first.position
    with refused(ledger, errors.HoldNotPending):
        ledger.execute(c.CaptureHold(hold_id, 1))
    with refused(ledger, errors.HoldNotPending):
        ledger.execute(c.VoidHold(hold_id))


def test_a_hold_expires_and_can_then_not_be_captured(ledger):
    account = ledger.open_account(DEAL)
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, account, amount=DEAL, expires_in_s=60))
    with refused(ledger, errors.HoldNotPending):
        ledger.execute(c.ExpireHold(hold_id))
    ledger.clock.advance(60)
    with refused(ledger, errors.HoldNotPending):
        ledger.execute(c.CaptureHold(hold_id))
    released = ledger.execute(c.ExpireHold(hold_id))
    assert released.cause == "expired"
    assert ledger.app.account(account).available == DEAL
    assert ledger.execute(c.ExpireHold(hold_id)).replayed


def test_a_hold_defaults_its_expiry_and_bounds_it(ledger):
    account = ledger.open_account(DEAL)
    placed_at = ledger.clock.now  # the hold's commit reads the clock at this time
    placed = ledger.execute(c.PlaceHold(uuid4(), account, amount=1))
    assert (placed.expires_at - placed_at).total_seconds() == HOLD_EXPIRY_S_DEFAULT
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.PlaceHold(uuid4(), account, amount=1, expires_in_s=0))


def test_a_hold_needs_an_amount_or_a_service_type(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.PlaceHold(uuid4(), account))
    with refused(ledger, errors.UnknownServiceType):
        ledger.execute(c.PlaceHold(uuid4(), account, service_type="teleport"))


def test_a_hold_above_the_available_balance_is_refused(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.PlaceHold(uuid4(), account, amount=DEAL + 1))


def test_capturing_an_unknown_hold_or_a_plain_transfer_is_hold_not_found(ledger):
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, 1))
    with refused(ledger, errors.HoldNotFound):
        ledger.execute(c.CaptureHold(uuid4()))
    with refused(ledger, errors.HoldNotFound):
        ledger.execute(c.VoidHold(transfer_id))


# Rewards, mint, burn


def test_a_reward_is_paid_from_the_rewards_account(ledger):
    account = ledger.open_account()
    ledger.execute(c.DistributeReward(uuid4(), account, "referral", 5 * DEAL))
    assert ledger.balance(account) == 5 * DEAL
    assert ledger.balance(REWARDS_ID) == REWARDS_FUNDING - 5 * DEAL


def test_a_reward_beyond_the_rewards_pool_is_refused(ledger):
    account = ledger.open_account()
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.DistributeReward(uuid4(), account, "jackpot", REWARDS_FUNDING + 1))


def test_a_reward_needs_a_type(ledger):
    account = ledger.open_account()
    with refused(ledger, errors.InvalidRequest):
        ledger.execute(c.DistributeReward(uuid4(), account, "", DEAL))


def test_mint_and_burn_move_against_the_issuance_account(ledger):
    account = ledger.open_account()
    ledger.execute(c.Mint(uuid4(), account, 7 * DEAL))
    ledger.execute(c.Burn(uuid4(), account, 2 * DEAL))
    assert ledger.balance(account) == 5 * DEAL
    assert ledger.balance(ISSUANCE_ID) == -(INITIAL_SUPPLY + 5 * DEAL)


def test_burning_more_than_the_balance_is_refused(ledger):
    account = ledger.open_account(DEAL)
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.Burn(uuid4(), account, DEAL + 1))


def test_minting_past_the_supply_ceiling_is_refused(ledger):
    account = ledger.open_account()
    remaining = SUPPLY_MAX - INITIAL_SUPPLY
    while remaining > INITIAL_SUPPLY:
        ledger.execute(c.Mint(uuid4(), account, INITIAL_SUPPLY))
        remaining -= INITIAL_SUPPLY
    ledger.execute(c.Mint(uuid4(), account, remaining))
    with refused(ledger, errors.SupplyLimitExceeded):
        ledger.execute(c.Mint(uuid4(), account, 1))


# Reversals


def test_a_reversal_moves_the_amount_back_and_marks_the_original(ledger):
    source, destination = ledger.open_account(5 * DEAL), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, 2 * DEAL))
    ledger.settle(transfer_id)
    outcome = ledger.execute(c.ReverseTransfer(uuid4(), transfer_id, "mistake"))
    assert outcome.kind == "reversal"
    assert (ledger.balance(source), ledger.balance(destination)) == (5 * DEAL, 0)
    assert ledger.app.transfer(transfer_id).status == "reversed"


def test_a_transfer_is_reversed_at_most_once_and_a_reversal_never(ledger):
    source, destination = ledger.open_account(5 * DEAL), ledger.open_account()
    transfer_id, reversal_id = uuid4(), uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, DEAL))
    ledger.settle(transfer_id)
    ledger.execute(c.ReverseTransfer(reversal_id, transfer_id))
    with refused(ledger, errors.TransferNotReversible):
        ledger.execute(c.ReverseTransfer(uuid4(), transfer_id))
    with refused(ledger, errors.TransferNotReversible):
        ledger.execute(c.ReverseTransfer(uuid4(), reversal_id))


def test_a_reversal_needs_the_destination_to_still_hold_the_amount(ledger):
    source, destination, third = ledger.open_account(DEAL), ledger.open_account(), ledger.open_account()
    transfer_id = uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, DEAL))
    ledger.settle(transfer_id)
    ledger.execute(c.TransferFunds(uuid4(), destination, third, 1))
    with refused(ledger, errors.InsufficientBalance):
        ledger.execute(c.ReverseTransfer(uuid4(), transfer_id))
    assert ledger.app.transfer(transfer_id).status == "settled"


def test_a_movement_pending_settlement_is_reversed_only_once_it_settles(ledger):
    """An admin reversal goes on chain: were it taken while its original is
    still pending there, the original could fail and the reversal settle,
    moving other tokens back. A mint and a captured hold wait the same way."""
    source, destination = ledger.open_account(5 * DEAL), ledger.open_account()
    transfer_id, minted = uuid4(), uuid4()
    ledger.execute(c.TransferFunds(transfer_id, source, destination, DEAL))
    ledger.execute(c.Mint(minted, destination, DEAL))
    for original in (transfer_id, minted):
        with refused(ledger, errors.TransferNotSettled):
            ledger.execute(c.ReverseTransfer(uuid4(), original))
    ledger.settle(transfer_id)
    ledger.execute(c.ReverseTransfer(uuid4(), transfer_id))
    assert ledger.app.transfer(transfer_id).status == "reversed"
    assert ledger.app.transfer(minted).status == "pending"


def test_reversing_an_unknown_transfer_is_transfer_not_found(ledger):
    with refused(ledger, errors.TransferNotFound):
        ledger.execute(c.ReverseTransfer(uuid4(), uuid4()))


def test_a_captured_hold_can_be_reversed_but_a_pending_one_cannot(ledger):
    account = ledger.open_account(10 * DEAL)
    hold_id = uuid4()
    ledger.execute(c.PlaceHold(hold_id, account, amount=DEAL))
    with refused(ledger, errors.TransferNotReversible):
        ledger.execute(c.ReverseTransfer(uuid4(), hold_id))
    ledger.execute(c.CaptureHold(hold_id, DEAL // 2))
    with refused(ledger, errors.TransferNotSettled):
        ledger.execute(c.ReverseTransfer(uuid4(), hold_id))
    ledger.settle(hold_id)
    ledger.execute(c.ReverseTransfer(uuid4(), hold_id))
    assert ledger.balance(account) == 10 * DEAL


# Wallets


def test_a_wallet_connects_once_and_reconnects_after_disconnecting(ledger):
    first, second = ledger.open_account(), ledger.open_account()
    address = str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(first, address))
    with refused(ledger, errors.WalletAlreadyConnected):
        ledger.execute(c.ConnectWallet(second, address))
    with refused(ledger, errors.WalletAlreadyConnected):
        ledger.execute(c.ConnectWallet(first, address))
    with refused(ledger, errors.WalletNotFound):
        ledger.execute(c.DisconnectWallet(second, address))
    ledger.execute(c.DisconnectWallet(first, address))
    with refused(ledger, errors.WalletNotFound):
        ledger.execute(c.DisconnectWallet(first, address))
    assert ledger.execute(c.ConnectWallet(second, address)).connected


def test_a_wallet_needs_a_valid_address_and_an_existing_account(ledger):
    account = ledger.open_account()
    with refused(ledger, errors.InvalidWalletAddress):
        ledger.execute(c.ConnectWallet(account, "not-an-address"))
    with refused(ledger, errors.AccountNotFound):
        ledger.execute(c.ConnectWallet(uuid4(), str(Keypair().pubkey())))



# The writer


class _GatedProcessor:
    """Holds the writer inside its first batch until the test opens the gate."""

    def __init__(self, processor) -> None:
        import threading

        self.processor = processor
        self.entered, self.gate = threading.Event(), threading.Event()

    def process_group(self, commands, spent, **kwargs):
        self.entered.set()
        self.gate.wait(10)
        return self.processor.process_group(commands, spent, **kwargs)


def test_a_cancelled_command_is_dropped_and_the_writer_keeps_running(ledger):
    from application.write.writer import CommandWriter

    gated = _GatedProcessor(ledger.processor)
    writer = CommandWriter(gated).start()
    first, cancelled, after = uuid4(), uuid4(), uuid4()
    first_future = writer.send(c.OpenAccount(first), authority=INTERNAL)
    assert gated.entered.wait(10)
    waiting = writer.send(c.OpenAccount(cancelled), authority=INTERNAL)
    assert waiting.cancel()
    gated.gate.set()
    assert first_future.result(10).account_id == first
    assert writer.execute(c.OpenAccount(after), authority=INTERNAL).account_id == after
    writer.stop()
    assert ledger.app.load(cancelled) is None


@pytest.mark.parametrize("text", ["half \ud800 pair", "\udfff"])
def test_a_lone_surrogate_is_refused_in_every_free_text(text):
    """Not text, and not encodable for the store: refused as a control
    character is, in reason and in metadata values alike (one rule)."""
    from application.references import check_metadata

    with pytest.raises(errors.InvalidRequest, match="surrogate"):
        c.check_reason(text)
    with pytest.raises(errors.InvalidRequest, match="surrogate"):
        check_metadata({"a": text})


def test_fields_added_to_deposit_commands_fingerprint_only_when_given():
    """An assignment or a credit stored before ``account_id`` and
    ``position`` existed fingerprints as it did then, so its repeat is still
    recognised as the same request (and another as a conflict)."""
    finding, account, deposit = uuid4(), uuid4(), uuid4()

    def stored(*parts: object) -> str:
        text = "|".join(str(part) for part in parts)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    assert c.AssignDeposit(finding, "why").fingerprint() == stored(
        "assign_deposit", finding, "why")
    assert c.AssignDeposit(finding, "why", account).fingerprint() != stored(
        "assign_deposit", finding, "why")
    credit = c.CreditDeposit(deposit, account, 5, "sig", 7, "src", None)
    assert credit.fingerprint() == stored(
        "credit_deposit", deposit, account, 5, "sig", 7, "src", None)
    assert c.CreditDeposit(deposit, account, 5, "sig", 7, "src", None, "1").fingerprint() != (
        credit.fingerprint())
