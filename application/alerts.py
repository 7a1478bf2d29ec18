"""Alerts: conditions an operator must act on, raised where they are found.

Settlement failing on chain, a reconciliation finding, suspicious activity,
the event store unreachable, the projection stalled and the fee payer's SOL
running low are each raised
through ``raise_alert``. Every alert is an ERROR log line with structured
fields (``extra={"alert": {...}}`` for JSON log handlers, and the same
fields as ``key=value`` in the message for plain ones), a count in
``alerts_total{kind}``, and a call to each registered ``AlertSink`` (the
signed webhook in interface/wiring/alert_webhook.py).

Why one process-wide ``ALERTS``: alerts are raised deep inside the writer,
the settler and background threads, and what they feed (logging, the
Prometheus registry) is process-wide already; threading an alerter through
every constructor would add wiring but no isolation. The composition root
adds and removes sinks.

Raising never blocks and never fails the caller: sinks must only enqueue,
and a sink that raises is logged and skipped. The same condition seen over
and over (the store down for every command of a busy minute) alerts once
per ``cooldown_s`` for its ``dedup_key``; the rest are counted in
``alerts_suppressed_total{kind}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID, uuid4

from prometheus_client import Counter

from application.metrics_registry import metric

logger = logging.getLogger(__name__)

COOLDOWN_S_DEFAULT = 60.0
TRACKED_KEYS_MAX = 10_000
FIELD_TEXT_LENGTH_MAX = 500
"""Field values are cut to this many characters: an alert is a pointer to
the log and the read models, not a copy of them."""

FieldValue = str | int | float | bool | None


class AlertKind(StrEnum):
    SETTLEMENT_FAILED = "settlement_failed"
    RECONCILIATION_FINDING = "reconciliation_finding"
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    STORE_UNREACHABLE = "store_unreachable"
    PROJECTION_STALLED = "projection_stalled"
    UNAUTHENTICATED_EVENT = "unauthenticated_event"
    STORE_DAMAGED = "store_damaged"
    CHAIN_AHEAD_OF_LOG = "chain_ahead_of_log"
    FEE_PAYER_LOW = "fee_payer_low"
    UNASSIGNED_DEPOSIT = "unassigned_deposit"
    CUSTODY_ACCOUNT_UNSAFE = "custody_account_unsafe"


STORE_ALERT_KEY = "event-store"
"""One store, one outage: wherever it is noticed (the writer, a request, a
probe), a store_unreachable alert shares this key, so the outage alerts
once per cooldown, not once per place that saw it."""

ALERTS_RAISED = metric(Counter, "alerts", "Alerts raised, by kind", labels=("kind",))
ALERTS_SUPPRESSED = metric(
    Counter, "alerts_suppressed",
    "Alerts not raised again because the same condition alerted within the cooldown",
    labels=("kind",),
)


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    summary: str
    fields: Mapping[str, FieldValue]
    raised_at: datetime
    alert_id: UUID = field(default_factory=uuid4)

    def as_dict(self) -> dict[str, object]:
        """The alert as JSON-ready data (the webhook's body)."""
        return {
            "alert_id": str(self.alert_id), "kind": self.kind.value, "summary": self.summary,
            "raised_at": self.raised_at.isoformat().replace("+00:00", "Z"),
            "fields": dict(self.fields),
        }


class AlertSink(Protocol):
    def deliver(self, alert: Alert) -> None:
        """Take the alert for delivery and return at once; never raise."""


class Alerts:
    def __init__(self, *, cooldown_s: float = COOLDOWN_S_DEFAULT,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._sinks: list[AlertSink] = []
        self._last_raised: OrderedDict[tuple[AlertKind, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def add_sink(self, sink: AlertSink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: AlertSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def raise_alert(self, kind: AlertKind, summary: str, *, dedup_key: str = "",
                    **fields: FieldValue) -> Alert | None:
        """Log, count and hand to the sinks; None when suppressed as a repeat."""
        if not self._first_within_cooldown(kind, dedup_key):
            ALERTS_SUPPRESSED.labels(kind.value).inc()
            return None
        alert = Alert(kind, summary, {k: _bounded(v) for k, v in fields.items()},
                      datetime.now(UTC))
        ALERTS_RAISED.labels(kind.value).inc()
        described = " ".join(f"{key}={value!r}" for key, value in alert.fields.items())
        logger.error("ALERT %s: %s %s", kind.value, summary, described,
                     extra={"alert": alert.as_dict()})
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink.deliver(alert)
            except Exception:
                logger.exception("alert sink %s failed", type(sink).__name__)
        return alert

    def _first_within_cooldown(self, kind: AlertKind, dedup_key: str) -> bool:
        now = self._monotonic()
        key = (kind, dedup_key)
        with self._lock:
            last = self._last_raised.get(key)
            if last is not None and now - last < self.cooldown_s:
                return False
            self._last_raised[key] = now
            self._last_raised.move_to_end(key)
            while len(self._last_raised) > TRACKED_KEYS_MAX:
                self._last_raised.popitem(last=False)
            return True

    def reset(self) -> None:
        """Forget the cooldowns (tests, and a restarted service)."""
        with self._lock:
            self._last_raised.clear()


def _bounded(value: FieldValue) -> FieldValue:
    if isinstance(value, str) and len(value) > FIELD_TEXT_LENGTH_MAX:
        return value[:FIELD_TEXT_LENGTH_MAX] + "..."
    return value


ALERTS = Alerts()
"""The process's alerts (see the module's docstring for why one)."""


def raise_alert(kind: AlertKind, summary: str, *, dedup_key: str = "",
                **fields: FieldValue) -> Alert | None:
    return ALERTS.raise_alert(kind, summary, dedup_key=dedup_key, **fields)
