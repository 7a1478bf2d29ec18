"""Alerts raised during a test, collected by a sink on the process-wide
alerter (the tests' stand-in for the webhook)."""

from __future__ import annotations

from collections.abc import Iterator

from application.alerts import ALERTS, Alert, AlertKind


class CollectedAlerts:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def deliver(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def of(self, kind: AlertKind) -> list[Alert]:
        return [alert for alert in self.alerts if alert.kind is kind]


def collecting_alerts() -> Iterator[CollectedAlerts]:
    """A fresh alerter (no cooldowns carried over) with a collecting sink,
    removed afterwards: the body of the ``raised`` fixture."""
    sink = CollectedAlerts()
    ALERTS.reset()
    ALERTS.add_sink(sink)
    yield sink
    ALERTS.remove_sink(sink)
