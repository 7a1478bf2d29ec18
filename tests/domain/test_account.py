"""The Account aggregate on its own: given events, when a decision, then
events (or a refusal that changes nothing)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import errors
from domain.account import EXTERNAL, ISSUANCE, USER, Account
from domain.amounts import SUPPLY_MAX
from domain.movements import DEPOSIT, REVERSAL, WITHDRAWAL, check_movement

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def funded(amount: int) -> Account:
    account = Account.open(uuid4(), USER, NOW)
    account.credit(uuid4(), amount, "mint", "", NOW)
    return account


def new_events(account: Account) -> list[str]:
    return [type(event).__name__ for event in account.collect_events()]


def test_a_debit_records_the_balance_after_it():
    account = funded(100)
    account.collect_events()
    account.debit(uuid4(), 30, "transfer", "rent", NOW)
    (event,) = account.collect_events()
    assert (type(event).__name__, event.amount, event.balance_after) == ("Debited", 30, 70)


def test_a_refused_debit_triggers_nothing():
    account = funded(10)
    account.collect_events()
    with pytest.raises(errors.InsufficientBalance):
        account.debit(uuid4(), 11, "transfer", "", NOW)
    assert new_events(account) == [] and account.balance == 10


def test_held_funds_are_unavailable_and_a_capture_releases_the_rest():
    account = funded(100)
    hold = uuid4()
    account.place_hold(hold, 60, NOW)
    assert account.available == 40
    with pytest.raises(errors.InsufficientBalance):
        account.place_hold(uuid4(), 41, NOW)
    account.capture_hold(hold, 25, "fee", "goal", NOW)
    assert (account.balance, account.held, account.available) == (75, 0, 75)


def test_releasing_an_unknown_hold_is_hold_not_found():
    with pytest.raises(errors.HoldNotFound):
        funded(1).release_hold(uuid4(), "voided", NOW)


def test_the_issuance_account_goes_negative_down_to_the_supply_ceiling_only():
    issuance = Account.open(uuid4(), ISSUANCE, NOW)
    issuance.debit(uuid4(), SUPPLY_MAX, "mint", "", NOW)
    assert issuance.balance == -SUPPLY_MAX
    with pytest.raises(errors.SupplyLimitExceeded):
        issuance.debit(uuid4(), 1, "mint", "", NOW)


def test_allowances_are_set_not_added_and_spending_lowers_them():
    owner, spender = funded(100), funded(0)
    assert owner.set_allowance(spender, 50, NOW)
    assert not owner.set_allowance(spender, 50, NOW)
    owner.spend_allowance(spender, uuid4(), 20, NOW)
    assert owner.allowance_for(spender.id) == 30
    with pytest.raises(errors.AllowanceExceeded):
        owner.spend_allowance(spender, uuid4(), 31, NOW)
    owner.set_allowance(spender, 0, NOW)
    assert owner.allowances == {}


def test_a_frozen_spender_is_given_nothing_more_and_spends_nothing_but_may_lose_its_allowance():
    owner, spender = funded(100), funded(0)
    owner.set_allowance(spender, 50, NOW)
    spender.freeze(NOW)
    with pytest.raises(errors.AccountFrozen):
        owner.set_allowance(spender, 60, NOW)
    with pytest.raises(errors.AccountFrozen):
        owner.spend_allowance(spender, uuid4(), 1, NOW)
    assert owner.set_allowance(spender, 10, NOW)
    assert owner.allowance_for(spender.id) == 10


def test_a_frozen_owner_grants_nothing_and_voids_nothing():
    owner, spender = funded(100), funded(0)
    hold = uuid4()
    owner.place_hold(hold, 10, NOW)
    owner.freeze(NOW)
    with pytest.raises(errors.AccountFrozen):
        owner.set_allowance(spender, 1, NOW)
    with pytest.raises(errors.AccountFrozen):
        owner.void_hold(hold, NOW)
    owner.release_hold(hold, "expired", NOW)  # time releases it, frozen or not
    assert owner.held == 0


def test_replaying_the_events_rebuilds_the_same_account():
    account = funded(100)
    account.place_hold(uuid4(), 10, NOW)
    account.freeze(NOW)
    events = [*account.pending_events]
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert (rebuilt.balance, rebuilt.held, rebuilt.frozen) == (100, 10, True)


def test_a_hold_reserves_nothing_from_its_expiry_on_but_is_released_before_a_spend():
    account, hold = funded(100), uuid4()
    expiry = NOW + timedelta(seconds=60)
    account.place_hold(hold, 60, NOW, expires_at=expiry)
    assert account.available_at(expiry - timedelta(microseconds=1)) == 40
    assert account.available_at(expiry) == 100 and account.expired_holds(expiry) == [hold]
    with pytest.raises(RuntimeError, match="expired holds"):  # a path that forgot to record it
        account.debit(uuid4(), 100, "transfer", "", expiry)
    account.release_hold(hold, "expired", expiry)
    account.debit(uuid4(), 100, "transfer", "", expiry)
    assert (account.balance, account.held, account.hold_expiries) == (0, 0, {})


def test_a_snapshot_taken_before_holds_carried_their_expiry_still_loads():
    from eventsourcing.domain import Snapshot

    account = funded(100)
    account.place_hold(uuid4(), 10, NOW)  # as an earlier version placed it: no expiry
    snapshot = Snapshot.take(account)
    state = {k: v for k, v in snapshot.state.items() if k not in ("hold_expiries", "class_version")}
    old = Snapshot(originator_id=snapshot.originator_id,
                   originator_version=snapshot.originator_version,
                   timestamp=snapshot.timestamp, topic=snapshot.topic, state=state)
    restored = old.mutate(None)
    assert (restored.held, restored.hold_expiries) == (10, {})
    later = NOW + timedelta(days=365)
    assert restored.available_at(later) == 90  # its expiry unknown to the account...
    (hold,) = restored.holds_without_expiry()
    restored.learn_hold_expiry(hold, NOW + timedelta(seconds=900))  # ...until read from the hold
    assert restored.available_at(later) == 100 and restored.holds_without_expiry() == []


@pytest.mark.parametrize("kind", ["transfer", "fee", "reward", "mint", "burn"])
def test_the_external_account_takes_part_in_withdrawals_and_deposits_only(kind):
    """Tokens outside custody leave and come back only through the commands
    that move them on chain (and a failed withdrawal's reversal)."""
    user, external = funded(10), Account.open(uuid4(), EXTERNAL, NOW)
    for source, destination in ((user, external), (external, user)):
        with pytest.raises(errors.InvalidRequest, match="external account takes part only"):
            check_movement(source, destination, 1, kind, NOW)
    check_movement(user, external, 1, WITHDRAWAL, NOW)
    external.credit(uuid4(), 5, WITHDRAWAL, "", NOW)
    check_movement(external, user, 1, DEPOSIT, NOW)
    check_movement(external, user, 1, REVERSAL, NOW)


@pytest.mark.parametrize("kind", [WITHDRAWAL, DEPOSIT])
def test_a_withdrawal_or_deposit_has_the_external_account_on_one_side(kind):
    with pytest.raises(errors.InvalidRequest, match="external account"):
        check_movement(funded(10), funded(0), 1, kind, NOW)
