"""The alert webhook: every alert POSTed, signed, to DEALS_ALERT_WEBHOOK_URL.

``deliver`` only puts the alert in a bounded queue (full: the alert is
dropped and counted), so raising an alert never waits on the network; one
background thread sends them in order, retrying a failed attempt with
exponential backoff up to a bounded number of attempts (tenacity).

The request: ``POST`` with a JSON body (``Alert.as_dict``) and

* ``X-Deals-Timestamp``: Unix seconds when the attempt was signed;
* ``X-Deals-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with
  DEALS_ALERT_WEBHOOK_SECRET, of ``<timestamp>.<body>``. Signing the
  timestamp with the body lets a receiver refuse a replayed old request;
  it checks with a constant-time compare and a few minutes' tolerance;
* ``X-Deals-Alert-Id``: the same on every attempt, so a receiver that saw
  an attempt whose answer was lost can drop the repeat.

2xx is delivered; 408, 429, 5xx, timeouts and connection errors are
retried; any other answer is a permanent failure (the receiver refuses it,
trying again would not help). Nothing of the secret is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client import Counter
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from application.alerts import Alert
from application.metrics_registry import metric
from application.ops.background import BackgroundThread

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Deals-Signature"
TIMESTAMP_HEADER = "X-Deals-Timestamp"
ALERT_ID_HEADER = "X-Deals-Alert-Id"
RETRYABLE_STATUSES = frozenset({408, 429})

WEBHOOK_DELIVERIES = metric(
    Counter, "alert_webhook_deliveries",
    "Alert webhook outcomes: delivered, failed (attempts used up or refused), "
    "dropped (queue full or shutting down)", labels=("outcome",),
)
WEBHOOK_ATTEMPTS = metric(
    Counter, "alert_webhook_attempts", "Alert webhook POST attempts, retries included"
)


@dataclass(frozen=True)
class WebhookPolicy:
    queued_max: int = 1000
    attempts_max: int = 6
    backoff_s: float = 0.5
    """Wait before the second attempt; doubled for each further one."""
    backoff_s_max: float = 30.0
    timeout_s: float = 5.0
    """Per attempt: connect and answer."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Deals-Signature value of a request (receivers do the same)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _Stopping(Exception):
    """The service stops while an alert waits for its next attempt."""


class _Permanent(Exception):
    """The receiver refused the alert; another attempt would not help."""


class WebhookAlertSink:
    def __init__(self, url: str, secret: str, policy: WebhookPolicy | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("DEALS_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
        if not secret:
            raise ValueError("DEALS_ALERT_WEBHOOK_SECRET must be set with DEALS_ALERT_WEBHOOK_URL")
        self.url = url
        self._secret = secret.encode("utf-8")
        self.policy = policy or WebhookPolicy()
        self._queue: queue.Queue[Alert] = queue.Queue(self.policy.queued_max)
        self._background = BackgroundThread("alert-webhook", self._run)

    def __repr__(self) -> str:
        return f"WebhookAlertSink({self.url!r})"

    def start(self) -> WebhookAlertSink:
        self._background.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop sending; alerts still queued are dropped (and counted)."""
        self._background.stop(timeout_s)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            WEBHOOK_DELIVERIES.labels("dropped").inc()

    def deliver(self, alert: Alert) -> None:
        if self._background.stopping.is_set():
            WEBHOOK_DELIVERIES.labels("dropped").inc()
            return
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            WEBHOOK_DELIVERIES.labels("dropped").inc()
            logger.warning("alert webhook queue full; alert %s %s dropped",
                           alert.kind.value, alert.alert_id)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while not self._background.stopping.is_set():
            try:
                alert = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            outcome = self._send(alert)
            WEBHOOK_DELIVERIES.labels(outcome).inc()

    def _send(self, alert: Alert) -> str:
        body = json.dumps(alert.as_dict(), separators=(",", ":")).encode("utf-8")
        retryer = Retrying(
            stop=stop_after_attempt(self.policy.attempts_max),
            wait=wait_exponential(multiplier=self.policy.backoff_s, max=self.policy.backoff_s_max),
            retry=retry_if_exception_type(OSError),  # URLError, timeouts, refused connections
            sleep=self._wait_unless_stopping, reraise=True,
            before_sleep=lambda state: logger.warning(
                "alert webhook attempt %d for %s failed: %s", state.attempt_number,
                alert.alert_id, _describe(state.outcome.exception() if state.outcome else None)),
        )
        try:
            retryer(self._post, alert, body)
            return "delivered"
        except _Permanent as refusal:
            logger.error("alert webhook refused alert %s: %s", alert.alert_id, refusal)
            return "failed"
        except _Stopping:
            return "dropped"
        except OSError as error:
            logger.warning("alert webhook attempt %d for %s failed: %s", self.policy.attempts_max,
                           alert.alert_id, _describe(error))
        if self._background.stopping.is_set():
            return "dropped"
        logger.error("alert webhook gave up on alert %s %s after %d attempts",
                     alert.kind.value, alert.alert_id, self.policy.attempts_max)
        return "failed"

    def _wait_unless_stopping(self, seconds: float) -> None:
        """tenacity's sleep: the wait ends early, and the alert is dropped,
        when the service stops."""
        if self._background.stopping.wait(seconds):
            raise _Stopping

    def _post(self, alert: Alert, body: bytes) -> None:
        WEBHOOK_ATTEMPTS.inc()
        timestamp = str(int(time.time()))
        # S310: the URL's scheme is checked to be http(s) in __init__.
        request = urllib.request.Request(self.url, data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            ALERT_ID_HEADER: str(alert.alert_id),
            "User-Agent": "deals-ledger-alerts",
        })
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout_s) as answer:  # noqa: S310
                answer.read(1024)
        except urllib.error.HTTPError as error:
            if error.code >= 500 or error.code in RETRYABLE_STATUSES:
                raise OSError(f"HTTP {error.code}") from None
            raise _Permanent(f"HTTP {error.code}") from None


def _describe(error: BaseException | None) -> str:
    reason = getattr(error, "reason", None)
    return f"{type(error).__name__}: {reason or error}"
