"""Alerts, the health watch and the suspicious-activity rules, without a
server: given what happened, which alerts, log lines and counts follow."""

from __future__ import annotations

import logging
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from application.alerts import Alert, AlertKind, Alerts
from application.ops.health_watch import HealthWatch, WatchPolicy
from application.ops.suspicious_activity import (
    ACCOUNT_VELOCITY,
    AUTH_FAILURES,
    KEY_VELOCITY,
    LARGE_AMOUNT,
    SuspicionRules,
    SuspiciousActivityMonitor,
)
from application.outcomes import BatchItemResult, BatchRecorded, MovementRecorded
from application.write.writer import BatchReport
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from tests.support.alerts import CollectedAlerts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> CollectedAlerts:
    return CollectedAlerts()


@pytest.fixture
def alerts(clock, sink) -> Alerts:
    alerts = Alerts(cooldown_s=60, monotonic=clock)
    alerts.add_sink(sink)
    return alerts


# --- alerts ---------------------------------------------------------------------


def test_an_alert_is_an_error_line_with_fields_a_count_and_a_delivery(alerts, sink, caplog):
    before = count("alerts_total", kind="settlement_failed")
    with caplog.at_level(logging.ERROR, logger="application.alerts"):
        alert = alerts.raise_alert(AlertKind.SETTLEMENT_FAILED, "a movement failed on chain",
                                   signature="sig1", transfer_ids="t1")
    assert alert is not None and sink.alerts == [alert]
    assert count("alerts_total", kind="settlement_failed") == before + 1
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "settlement_failed" in record.getMessage() and "signature='sig1'" in record.getMessage()
    assert record.alert["kind"] == "settlement_failed"
    assert record.alert["fields"] == {"signature": "sig1", "transfer_ids": "t1"}


def test_the_same_condition_alerts_once_per_cooldown(alerts, sink, clock):
    before = count("alerts_suppressed_total", kind="store_unreachable")
    for _ in range(5):
        alerts.raise_alert(AlertKind.STORE_UNREACHABLE, "down", dedup_key="writer")
    assert len(sink.alerts) == 1
    assert count("alerts_suppressed_total", kind="store_unreachable") == before + 4
    alerts.raise_alert(AlertKind.STORE_UNREACHABLE, "down", dedup_key="other")
    clock.now += 61
    alerts.raise_alert(AlertKind.STORE_UNREACHABLE, "down", dedup_key="writer")
    assert len(sink.alerts) == 3


def test_a_failing_sink_never_fails_the_caller(alerts, sink, caplog):
    class Broken:
        def deliver(self, alert: Alert) -> None:
            raise RuntimeError("boom")

    alerts.add_sink(Broken())
    with caplog.at_level(logging.ERROR):
        assert alerts.raise_alert(AlertKind.PROJECTION_STALLED, "stalled") is not None
    assert len(sink.alerts) == 1
    assert any("alert sink Broken failed" in r.getMessage() for r in caplog.records)


def test_long_field_values_are_cut(alerts, sink):
    alerts.raise_alert(AlertKind.RECONCILIATION_FINDING, "findings", detail="x" * 10_000)
    assert len(str(sink.alerts[0].fields["detail"])) < 600


# --- health watch ---------------------------------------------------------------


class Positions:
    def __init__(self) -> None:
        self.head = 10
        self.read = 10
        self.store_down = False

    def store(self) -> int:
        if self.store_down:
            raise ConnectionError("connection refused")
        return self.head

    def read_models(self) -> int:
        return self.read


def watch_for(positions: Positions, alerts: Alerts, clock: Clock) -> HealthWatch:
    return HealthWatch(positions.store, positions.read_models, alerts,
                       WatchPolicy(interval_s=1, stall_after_s=30), monotonic=clock)


def test_an_unreachable_store_alerts(alerts, sink, clock):
    positions = Positions()
    watch = watch_for(positions, alerts, clock)
    watch.check()
    assert sink.alerts == []
    positions.store_down = True
    watch.check()
    [alert] = sink.alerts
    assert alert.kind is AlertKind.STORE_UNREACHABLE
    assert alert.fields["error"] == "ConnectionError"


def test_read_models_behind_and_not_advancing_alert_once_as_stalled(alerts, sink, clock):
    positions = Positions()
    watch = watch_for(positions, alerts, clock)
    watch.check()
    positions.head = 50  # the log moves on, the read models do not
    for _ in range(3):
        clock.now += 20
        watch.check()
    [alert] = sink.alerts
    assert alert.kind is AlertKind.PROJECTION_STALLED
    assert alert.fields["read_model_position"] == 10 and alert.fields["log_position"] == 50


def test_read_models_that_advance_or_are_caught_up_never_stall(alerts, sink, clock):
    positions = Positions()
    watch = watch_for(positions, alerts, clock)
    for step in range(10):
        clock.now += 20
        positions.head += 5
        positions.read += 5 if step % 2 else 0  # slow, but moving
        watch.check()
    positions.read = positions.head
    for _ in range(5):
        clock.now += 60
        watch.check()  # idle and caught up
    assert sink.alerts == []


# --- suspicious activity --------------------------------------------------------


def movement(source, destination, amount=UNITS_PER_DEAL, kind="transfer", replayed=False):
    return MovementRecorded(transfer_id=uuid4(), kind=kind, status="pending", amount=amount,
                            source=source, destination=destination, source_balance=0,
                            destination_balance=0, position=1, replayed=replayed)


def batch(*results) -> BatchReport:
    return BatchReport(commands=[], results=list(results), duration_s=0.0,
                       waited_s=[0.0] * len(results))


def monitor_for(alerts: Alerts, clock: Clock, **rules) -> SuspiciousActivityMonitor:
    defaults = {"window_s": 60, "account_commands_max": 5, "key_commands_max": 5,
                "large_amount": 1000 * UNITS_PER_DEAL}
    return SuspiciousActivityMonitor(SuspicionRules(**{**defaults, **rules}), alerts,
                                     monotonic=clock)


def test_an_account_moving_more_often_than_its_limit_is_flagged_once_per_window(
    alerts, sink, clock, caplog
):
    monitor = monitor_for(alerts, clock)
    busy, other = uuid4(), uuid4()
    before = count("suspicious_activity_total", rule=ACCOUNT_VELOCITY)
    with caplog.at_level(logging.WARNING, logger="application.ops.suspicious_activity"):
        for _ in range(12):
            clock.now += 1
            monitor.on_batch(batch(movement(busy, uuid4())))
        monitor.on_batch(batch(movement(other, uuid4())))
        monitor.drain()
    assert [a.fields["subject"] for a in sink.alerts] == [str(busy)]
    assert sink.alerts[0].kind is AlertKind.SUSPICIOUS_ACTIVITY
    assert count("suspicious_activity_total", rule=ACCOUNT_VELOCITY) == before + 1
    assert any(getattr(r, "suspicious_activity", {}).get("rule") == ACCOUNT_VELOCITY
               for r in caplog.records)
    clock.now += 120  # a new window: still as busy, flagged again
    for _ in range(6):
        monitor.on_batch(batch(movement(busy, uuid4())))
    monitor.drain()
    assert len(sink.alerts) == 2


def test_the_same_rate_spread_over_the_window_is_not_flagged(alerts, sink, clock):
    monitor = monitor_for(alerts, clock)
    steady = uuid4()
    for _ in range(50):
        clock.now += 13  # 4.6 per minute, under the 5 allowed
        monitor.on_batch(batch(movement(steady, uuid4())))
        monitor.drain()
    assert sink.alerts == []


def test_system_accounts_and_replays_are_not_counted(alerts, sink, clock):
    monitor = monitor_for(alerts, clock)
    user = uuid4()
    for _ in range(20):
        monitor.on_batch(batch(movement(uuid4(), TREASURY_ID, kind="fee")))
        monitor.on_batch(batch(movement(user, uuid4(), replayed=True)))
    monitor.drain()
    assert sink.alerts == []


def test_a_large_movement_is_flagged_each_time(alerts, sink, clock):
    monitor = monitor_for(alerts, clock)
    before = count("suspicious_activity_total", rule=LARGE_AMOUNT)
    monitor.on_batch(batch(movement(uuid4(), uuid4(), amount=999 * UNITS_PER_DEAL)))
    monitor.on_batch(batch(movement(uuid4(), uuid4(), amount=1000 * UNITS_PER_DEAL),
                           movement(uuid4(), uuid4(), amount=5000 * UNITS_PER_DEAL)))
    monitor.drain()
    assert [a.fields["amount"] for a in sink.alerts] == ["1000", "5000"]
    assert count("suspicious_activity_total", rule=LARGE_AMOUNT) == before + 2


def test_items_of_an_applied_batch_are_evaluated(alerts, sink, clock):
    monitor = monitor_for(alerts, clock)
    big = movement(uuid4(), uuid4(), amount=2000 * UNITS_PER_DEAL)
    result = BatchRecorded(atomic=True, applied=True, position=3,
                           results=(BatchItemResult(big.transfer_id, outcome=big),))
    monitor.on_batch(batch(result))
    monitor.drain()
    assert [a.fields["transfer_id"] for a in sink.alerts] == [str(big.transfer_id)]


def test_a_key_over_its_write_rate_is_flagged(alerts, sink, clock):
    monitor = monitor_for(alerts, clock)
    for _ in range(6):
        monitor.on_key_command("billing-service")
    monitor.on_key_command("quiet-service")
    monitor.drain()
    assert [(a.fields["rule"], a.fields["subject"]) for a in sink.alerts] == [
        (KEY_VELOCITY, "billing-service")]


def test_a_rule_at_zero_is_off(alerts, sink, clock):
    monitor = monitor_for(alerts, clock, account_commands_max=0, key_commands_max=0,
                          large_amount=0)
    account = uuid4()
    for _ in range(50):
        monitor.on_batch(batch(movement(account, uuid4(), amount=10**17)))
        monitor.on_key_command("k")
    monitor.drain()
    assert sink.alerts == [] and monitor.tracked_subjects == 0


def test_memory_is_bounded_in_subjects_and_in_queued_observations(alerts, clock):
    monitor = SuspiciousActivityMonitor(
        SuspicionRules(account_commands_max=3, large_amount=0), alerts,
        queued_max=100, subjects_max=50, monotonic=clock,
    )
    dropped = count("suspicious_activity_observations_dropped_total")
    for _ in range(300):
        monitor.on_batch(batch(movement(uuid4(), uuid4())))
    assert count("suspicious_activity_observations_dropped_total") == dropped + 200
    monitor.drain()
    assert monitor.tracked_subjects == 50


def test_the_monitor_thread_evaluates_in_the_background(alerts, sink, clock):
    from tests.support.http import wait_until

    monitor = monitor_for(alerts, clock).start()
    try:
        monitor.on_batch(batch(movement(uuid4(), uuid4(), amount=10**15)))
        wait_until(lambda: sink.alerts, 5, "the large movement to be flagged")
    finally:
        monitor.stop()


def test_a_client_with_many_refused_tokens_is_flagged(alerts, sink, clock):
    monitor = monitor_for(alerts, clock, auth_failures_max=3)
    for _ in range(4):
        monitor.on_auth_failure("203.0.113.9")
    monitor.on_auth_failure("198.51.100.1")
    monitor.drain()
    assert [(a.fields["rule"], a.fields["subject"]) for a in sink.alerts] == [
        (AUTH_FAILURES, "203.0.113.9")]
