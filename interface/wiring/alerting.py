"""Alerting for one ledger process: the webhook sink, the suspicious-activity
monitor and the health watch, built from settings and started and stopped
together by ``LedgerService`` (kept here so the composition root only
adds two lines)."""

from __future__ import annotations

from collections.abc import Callable

from application.alerts import ALERTS, AlertKind, Alerts, raise_alert
from application.ops.health_watch import HealthWatch, WatchPolicy
from application.ops.suspicious_activity import SuspicionRules, SuspiciousActivityMonitor
from interface.wiring.alert_webhook import WebhookAlertSink
from interface.wiring.settings import Settings


def suspicion_rules(settings: Settings) -> SuspicionRules:
    return SuspicionRules(
        window_s=settings.suspicious_window_s,
        account_commands_max=settings.suspicious_account_commands,
        key_commands_max=settings.suspicious_key_commands,
        large_amount=settings.suspicious_large_amount,
        auth_failures_max=settings.suspicious_auth_failures,
    )


class Alerting:
    def __init__(self, settings: Settings, store_position: Callable[[], int],
                 read_position: Callable[[], int | None], alerts: Alerts = ALERTS) -> None:
        self.alerts = alerts
        alerts.cooldown_s = settings.alert_cooldown_s
        self.webhook: WebhookAlertSink | None = None
        if settings.alert_webhook_url:
            self.webhook = WebhookAlertSink(
                settings.alert_webhook_url, settings.alert_webhook_secret or ""
            )
        self.suspicious = SuspiciousActivityMonitor(suspicion_rules(settings), alerts)
        self.health_watch = HealthWatch(
            store_position, read_position, alerts,
            WatchPolicy(settings.health_watch_interval_s, settings.projection_stall_s),
        )

    def start(self) -> Alerting:
        if self.webhook is not None:
            self.webhook.start()
            self.alerts.add_sink(self.webhook)
        self.suspicious.start()
        self.health_watch.start()
        return self

    def stop(self) -> None:
        self.health_watch.stop()
        self.suspicious.stop()
        if self.webhook is not None:
            self.alerts.remove_sink(self.webhook)
            self.webhook.stop()


def alert_refused_page(position: int | None, violation: str) -> None:
    """The projector cannot apply the event at ``position`` (undecodable, or
    against a ledger rule): it stops there, never skips it, and says so."""
    raise_alert(AlertKind.PROJECTION_STALLED,
                f"the projector stopped at position {position}: it cannot apply that event",
                dedup_key=f"refused-at-{position}", position=position or 0,
                violation=violation[:300])
