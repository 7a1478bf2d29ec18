from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import errors
from domain.pricing import PRICES_DEFAULT, RULES_PER_SERVICE_MAX, PriceSchedule
from domain.transfer import CLIENT_STATUS_BY_STATE, PENDING, Transfer, movement_state

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def a_hold(expires_in_s: int = 60) -> Transfer:
    return Transfer.record(
        uuid4(), kind="fee", source=uuid4(), destination=uuid4(), amount=100, reason="goal",
        fingerprint="f", source_balance_after=0, destination_balance_after=0, now=NOW,
        phase=PENDING, expires_at=NOW + timedelta(seconds=expires_in_s),
    )


def test_a_hold_is_pending_until_captured_and_then_reversible_once_settled():
    hold = a_hold()
    with pytest.raises(errors.TransferNotReversible):
        hold.check_reversible()
    hold.capture(40, "g", 0, 0, NOW)
    assert (hold.phase, hold.posted_amount) == ("captured", 40)
    with pytest.raises(errors.TransferNotSettled):  # the capture is queued for the chain
        hold.check_reversible()
    hold.settle_without_submission("sig", 1, NOW)
    hold.check_reversible()
    with pytest.raises(errors.HoldNotPending):
        hold.void(NOW)


def test_a_hold_cannot_be_captured_once_its_time_is_up_but_can_expire():
    hold = a_hold(expires_in_s=10)
    later = NOW + timedelta(seconds=10)
    with pytest.raises(errors.HoldNotPending):
        hold.capture(1, "g", 0, 0, later)
    with pytest.raises(errors.HoldNotPending):
        hold.expire(NOW)
    hold.expire(later)
    assert hold.phase == "expired" and hold.status == "settled"


def test_settlement_lifecycle_reads_as_client_statuses():
    transfer = Transfer.record(
        uuid4(), kind="transfer", source=uuid4(), destination=uuid4(), amount=1, reason="",
        fingerprint="f", source_balance_after=0, destination_balance_after=1, now=NOW,
    )
    assert transfer.status == "pending"
    transfer.submit_settlement("sig", 150, NOW)
    assert transfer.status == "pending"
    transfer.settle("sig", 7, NOW)
    assert (transfer.status, transfer.slot) == ("settled", 7)
    transfer.mark_reversed(uuid4(), NOW)
    assert transfer.status == "reversed"


@pytest.mark.parametrize("reversed_", [False, True])
@pytest.mark.parametrize("phase", ["posted", "pending", "captured", "voided", "expired"])
@pytest.mark.parametrize("settlement", ["awaiting_capture", "queued", "submitted", "settled",
                                        "failed", "not_required"])
def test_every_state_a_movement_can_be_in_has_one_client_status(reversed_, phase, settlement):
    state = movement_state(reversed_=reversed_, phase=phase, settlement=settlement)
    if state == "awaiting_capture":  # a posted or captured movement never awaits a capture
        assert phase in ("posted", "captured")
        return
    assert CLIENT_STATUS_BY_STATE[state] in ("pending", "settled", "failed", "reversed")


def test_pending_names_a_hold_and_queued_a_movement_waiting_for_the_chain():
    hold = a_hold()
    assert (hold.state, hold.settlement_status, hold.status) == ("pending", "awaiting_capture",
                                                                 "pending")
    hold.capture(40, "g", 0, 0, NOW)
    assert (hold.state, hold.settlement_status, hold.status) == ("queued", "queued", "pending")
    voided = a_hold()
    voided.void(NOW)
    assert (voided.state, voided.settlement_status, voided.status) == (
        "voided", "not_required", "settled")


def test_the_latest_rule_covering_a_moment_sets_the_price():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    january, february = NOW, NOW + timedelta(days=31)
    schedule.set_rule("search", 7, january, february, NOW)
    schedule.set_rule("search", 9, january + timedelta(days=10), february, NOW)
    assert schedule.price_at("search", january) == 7
    assert schedule.price_at("search", january + timedelta(days=11)) == 9
    assert schedule.price_at("search", february) == PRICES_DEFAULT["search"]
    assert schedule.price_at("goal", january) == PRICES_DEFAULT["goal"]
    with pytest.raises(errors.UnknownServiceType):
        schedule.price_at("teleport", january)


def test_pricing_never_freezes_however_often_the_price_changes():
    """A price changed more often than the rule bound still changes: a rule
    without an end replaces the earlier ones from its moment on."""
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    for change in range(RULES_PER_SERVICE_MAX + 500):
        moment = NOW + timedelta(minutes=change)
        assert schedule.set_rule("search", change + 1, None, None, moment)
        assert schedule.price_at("search", moment) == change + 1
    assert len(schedule.rules_for("search")) == 1
    assert schedule.rule_version("search") == RULES_PER_SERVICE_MAX + 500 + 1


def test_expired_rules_stop_counting_and_the_live_ones_still_decide():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    for index in range(RULES_PER_SERVICE_MAX):
        start = NOW + timedelta(minutes=index)
        schedule.set_rule("goal", index + 1, start, start + timedelta(minutes=1), NOW)
    later = NOW + timedelta(days=400)
    with pytest.raises(errors.InvalidRequest):
        schedule.set_rule("goal", 5, later, later + timedelta(days=1), NOW)
    assert schedule.price_at("goal", NOW + timedelta(minutes=3, seconds=1)) == 4
    # A year on, every one of them has ended: they no longer count, nor stay.
    assert schedule.set_rule("goal", 5, later, later + timedelta(days=1), later)
    assert len(schedule.rules_for("goal")) == 1
    assert schedule.price_at("goal", later) == 5
    assert schedule.price_at("search", later) == PRICES_DEFAULT["search"]


def test_a_windowed_rule_keeps_the_rules_it_does_not_replace():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    schedule.set_rule("search", 7, None, None, NOW)
    schedule.set_rule("search", 9, NOW + timedelta(days=1), NOW + timedelta(days=2), NOW)
    schedule.set_rule("analysis", 3, None, None, NOW)
    assert schedule.price_at("search", NOW + timedelta(days=3)) == 7
    assert schedule.price_at("search", NOW + timedelta(days=1, hours=1)) == 9
    assert [rule["version"] for rule in schedule.rules] == [2, 3, 4]


def test_a_deactivated_rule_decides_no_price_and_the_earlier_one_does_again():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    schedule.set_rule("search", 7, None, None, NOW)
    schedule.set_rule("search", 9, NOW + timedelta(days=1), NOW + timedelta(days=2), NOW)
    inside = NOW + timedelta(days=1, hours=1)
    assert schedule.price_at("search", inside) == 9
    assert schedule.deactivate_rule("search", 3, NOW)
    assert schedule.price_at("search", inside) == 7
    assert schedule.deactivate_rule("search", 2, NOW)
    assert schedule.price_at("search", inside) == PRICES_DEFAULT["search"]
    assert schedule.rules_for("search") == []


def test_deactivating_a_rule_twice_or_of_another_service_writes_nothing():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    schedule.set_rule("search", 7, None, None, NOW)
    assert not schedule.deactivate_rule("goal", 2, NOW)
    assert schedule.deactivate_rule("search", 2, NOW)
    version = schedule.version
    assert not schedule.deactivate_rule("search", 2, NOW)
    assert schedule.version == version
    with pytest.raises(errors.UnknownServiceType):
        schedule.deactivate_rule("teleport", 2, NOW)


def test_a_deactivation_replays_to_the_same_schedule():
    schedule = PriceSchedule._create(PriceSchedule.Started, id=uuid4(), timestamp=NOW)
    schedule.set_rule("search", 7, None, None, NOW)
    schedule.set_rule("search", 9, NOW + timedelta(days=1), None, NOW)
    schedule.deactivate_rule("search", 3, NOW)
    replayed = None
    for event in schedule.collect_events():
        replayed = event.mutate(replayed)
    assert replayed.rules == schedule.rules
    assert replayed.price_at("search", NOW + timedelta(days=2)) == 7
