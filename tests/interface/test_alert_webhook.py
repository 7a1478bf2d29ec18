"""The alert webhook against a receiver the test runs on loopback: signed
requests, retries with backoff, bounded attempts and queue, and a receiver
that hangs or fails never slows or fails a command."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from uuid import UUID

import httpx
import pytest
from prometheus_client import REGISTRY

from application.alerts import ALERTS, Alert, AlertKind, Alerts
from domain.amounts import UNITS_PER_DEAL
from interface.wiring.alert_webhook import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAlertSink,
    WebhookPolicy,
)
from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.support.http import ThreadServer, wait_until
from tests.support.webhook import WebhookReceiver

SECRET = "webhook-secret-for-tests"
FAST = WebhookPolicy(backoff_s=0.05, backoff_s_max=0.2, timeout_s=2.0)


def deliveries(outcome: str) -> float:
    return REGISTRY.get_sample_value("alert_webhook_deliveries_total",
                                     {"outcome": outcome}) or 0.0


def an_alert(**fields) -> Alert:
    raised = Alerts(cooldown_s=0).raise_alert(AlertKind.RECONCILIATION_FINDING,
                                              "reconciliation found differences", **fields)
    assert raised is not None
    return raised


def verified(headers: dict[str, str], body: bytes, secret: str = SECRET) -> dict:
    """What a receiver does: check the signature in constant time, then parse."""
    timestamp = headers[TIMESTAMP_HEADER]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers[SIGNATURE_HEADER])
    assert abs(time.time() - int(timestamp)) < 300
    return json.loads(body)


@pytest.fixture
def sinks():
    started: list[WebhookAlertSink] = []

    def make(url: str, policy: WebhookPolicy = FAST) -> WebhookAlertSink:
        sink = WebhookAlertSink(url, SECRET, policy).start()
        started.append(sink)
        return sink

    yield make
    for sink in started:
        sink.stop()


def test_an_alert_is_posted_signed_over_its_timestamp_and_body(sinks):
    with WebhookReceiver() as receiver:
        alert = an_alert(run_id="r1", mismatches=2)
        sinks(receiver.url).deliver(alert)
        [request] = wait_until(receiver.delivered, 10, "the webhook POST")
    body = verified(request.headers, request.body)
    assert body == {"alert_id": str(alert.alert_id), "kind": "reconciliation_finding",
                    "summary": "reconciliation found differences",
                    "raised_at": body["raised_at"],
                    "fields": {"run_id": "r1", "mismatches": 2}}
    assert UUID(request.headers[ALERT_ID_HEADER]) == alert.alert_id
    assert request.headers["Content-Type"] == "application/json"


def test_a_signature_with_another_secret_does_not_verify(sinks):
    with WebhookReceiver() as receiver:
        sinks(receiver.url).deliver(an_alert())
        [request] = wait_until(receiver.delivered, 10, "the webhook POST")
    with pytest.raises(AssertionError):
        verified(request.headers, request.body, secret="another-secret")
    with pytest.raises(AssertionError):
        verified(request.headers, request.body.replace(b"reconciliation", b"R"))


def test_a_receiver_failing_its_first_attempts_gets_the_alert_after_retries(sinks):
    delivered = deliveries("delivered")
    with WebhookReceiver(fail_first=3) as receiver:
        started = time.monotonic()
        sinks(receiver.url).deliver(an_alert())
        [request] = wait_until(receiver.delivered, 10, "the retried webhook POST")
        elapsed_s = time.monotonic() - started
        assert receiver.attempts == 4
    verified(request.headers, request.body)
    assert elapsed_s >= 0.05 + 0.1 + 0.2  # backed off 0.05, 0.1, then 0.2 s (the cap)
    wait_until(lambda: deliveries("delivered") == delivered + 1, 5, "the delivered count")


def test_attempts_are_bounded_and_the_failure_is_counted(sinks):
    failed = deliveries("failed")
    with WebhookReceiver(fail_first=100) as receiver:
        sinks(receiver.url, WebhookPolicy(attempts_max=3, backoff_s=0.01)).deliver(an_alert())
        wait_until(lambda: deliveries("failed") == failed + 1, 10, "the failed count")
        assert receiver.attempts == 3 and receiver.delivered() == []


def test_a_receiver_refusing_the_alert_is_not_asked_again(sinks):
    failed = deliveries("failed")
    with WebhookReceiver(fail_first=100, fail_status=403) as receiver:
        sinks(receiver.url).deliver(an_alert())
        wait_until(lambda: deliveries("failed") == failed + 1, 10, "the failed count")
        assert receiver.attempts == 1


def test_an_unreachable_receiver_is_retried_then_given_up(sinks):
    failed = deliveries("failed")
    sink = sinks("http://127.0.0.1:9/alerts", WebhookPolicy(attempts_max=2, backoff_s=0.01))
    sink.deliver(an_alert())
    wait_until(lambda: deliveries("failed") == failed + 1, 10, "the failed count")


def test_a_hanging_receiver_fills_the_bounded_queue_and_later_alerts_are_dropped(sinks):
    dropped = deliveries("dropped")
    with WebhookReceiver() as receiver:
        receiver.hang()
        sink = sinks(receiver.url, WebhookPolicy(queued_max=2, timeout_s=10))
        sink.deliver(an_alert())
        wait_until(lambda: receiver.attempts == 1, 10, "the first POST to hang")
        started = time.monotonic()
        for _ in range(10):
            sink.deliver(an_alert())
        assert time.monotonic() - started < 0.5  # deliver only enqueues
        assert sink.queued == 2
        assert deliveries("dropped") == dropped + 8
        receiver.release.set()


@pytest.mark.parametrize("url, secret", [
    ("file:///etc/passwd", SECRET), ("ftp://127.0.0.1/x", SECRET),
    ("http://127.0.0.1/x", ""),
])
def test_a_webhook_needs_an_http_url_and_a_secret(url, secret):
    with pytest.raises(ValueError) as error:
        WebhookAlertSink(url, secret)
    assert SECRET not in str(error.value)


def test_the_secret_is_not_in_the_sinks_repr():
    assert SECRET not in repr(WebhookAlertSink("http://127.0.0.1/x", SECRET))


# --- through the service ------------------------------------------------------------


def alerting_server(make_settings, receiver: WebhookReceiver, **overrides) -> ThreadServer:
    ALERTS.reset()  # a cooldown left by another test must not hide this test's alerts
    settings = make_settings(
        "sqlite", alert_webhook_url=receiver.url, alert_webhook_secret=SECRET,
        suspicious_large_amount=50 * UNITS_PER_DEAL, **overrides,
    )
    return ThreadServer(settings).start()


def test_a_large_transfer_is_answered_then_alerted_to_the_webhook(make_settings):
    with WebhookReceiver() as receiver:
        server = alerting_server(make_settings, receiver)
        try:
            with server.client() as admin:
                source, destination = funded_account(admin, "100"), open_account(admin)
                body = transfer_body(source, destination, "60")
                answer = admin.post("/v1/transfers", json=body)
                assert answer.status_code == 201, answer.text
                wait_until(lambda: any(body["transfer_id"].encode() in r.body
                                       for r in receiver.delivered()),
                           10, "the suspicious-activity alert")
        finally:
            server.stop()
    alerts = [verified(r.headers, r.body) for r in receiver.delivered()]
    large = [a for a in alerts if a["fields"].get("transfer_id") == body["transfer_id"]]
    assert len(large) == 1 and large[0]["kind"] == "suspicious_activity"
    assert large[0]["fields"]["rule"] == "large_amount" and large[0]["fields"]["amount"] == "60"


def test_a_hanging_webhook_never_slows_or_fails_commands(make_settings):
    with WebhookReceiver() as receiver:
        receiver.hang()
        server = alerting_server(make_settings, receiver)
        try:
            with server.client() as admin:
                source, destination = funded_account(admin, "100000"), open_account(admin)
                latencies = []
                for _ in range(40):  # each one is a large movement, so each alerts
                    started = time.monotonic()
                    answer = admin.post("/v1/transfers",
                                        json=transfer_body(source, destination, "51"))
                    latencies.append(time.monotonic() - started)
                    assert answer.status_code == 201, answer.text
                wait_until(lambda: receiver.attempts >= 1, 10, "the webhook to be hanging")
            assert max(latencies) < 2.0, latencies
        finally:
            receiver.release.set()
            server.stop()


def test_a_busy_key_and_account_are_flagged_while_every_command_succeeds(make_settings):
    from tests.support.http import WRITER

    with WebhookReceiver() as receiver:
        server = alerting_server(make_settings, receiver, suspicious_key_commands=5,
                                 suspicious_account_commands=5)
        try:
            with server.client() as admin, server.client(WRITER) as writer:
                source, destination = funded_account(admin, "100"), open_account(admin)
                for _ in range(8):
                    answer = writer.post("/v1/transfers",
                                         json=transfer_body(source, destination, "1"))
                    assert answer.status_code == 201, answer.text

                def flagged() -> set[tuple[str, str]]:
                    bodies = [json.loads(r.body) for r in receiver.delivered()]
                    return {(b["fields"].get("rule"), b["fields"].get("subject"))
                            for b in bodies if b["kind"] == "suspicious_activity"}

                wait_until(lambda: {("key_velocity", "writer"),
                                    ("account_velocity", source)} <= flagged(),
                           10, "the velocity alerts")
        finally:
            server.stop()


def test_a_client_guessing_tokens_is_flagged_and_every_guess_is_unauthorized(make_settings):
    with WebhookReceiver() as receiver:
        server = alerting_server(make_settings, receiver, suspicious_auth_failures=5)
        try:
            for guess in range(8):
                answer = httpx.get(f"{server.url}/v1/system",
                                   headers={"Authorization": f"Bearer guess-{guess}"})
                assert answer.status_code == 401

            def flagged() -> list[dict]:
                bodies = [json.loads(r.body) for r in receiver.delivered()]
                return [b for b in bodies if b["fields"].get("rule") == "auth_failures"]

            [alert] = wait_until(flagged, 10, "the auth_failures alert")
            assert alert["fields"]["subject"] == "127.0.0.1"
            assert not any("guess-" in r.body.decode() for r in receiver.delivered())
        finally:
            server.stop()
