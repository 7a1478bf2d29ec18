"""Webhook delivery to real receivers on loopback: one that fails then
recovers, one that hangs, one that restarts. Nothing is lost, a repeat
carries the same event id, order holds per subscription, every request
verifies with the Standard Webhooks verifier, and commands complete while
a receiver hangs."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from tests.interface.helpers import assert_error, new_id, open_account
from tests.support.http import WRITER, ThreadServer, wait_until

EVENTS = 12
DELIVERED_WAIT_S = 120


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request it acknowledges;
    answers 500 to the first ``failures``; with ``hang`` set, holds each
    request until ``release``. ``restart`` closes the socket and opens it again on
    the same port."""

    def __init__(self, failures: int = 0, hang: bool = False) -> None:
        self.failures = failures
        self.hanging = threading.Event()
        if hang:
            self.hanging.set()
        self.received: list[tuple[dict, str]] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the library's name
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                if receiver.hanging.is_set():  # the ledger's attempt times out first
                    receiver._hold.wait(60)
                status = 500 if receiver.failures > 0 else 200
                receiver.failures -= 1
                if status == 200:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._hold = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.hanging.clear()
        self._hold.set()

    def stop(self) -> None:
        self._hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.received]


def _subscribe(admin, receiver: Receiver, **extra) -> dict:
    answer = admin.post("/v1/webhooks", json={"url": receiver.url, "types": ["transfer.recorded"],
                                              **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _mint(admin, account: str) -> None:
    answer = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account, "amount": "1"})
    assert answer.status_code == 201, answer.text


def _check(receiver: Receiver, secret: str, expected: list[str]) -> None:
    """All of ``expected`` arrived, first in order (a repeat carries an id
    already seen: a request held past the ledger's timeout is answered
    late), and every request verifies."""
    ids = receiver.ids()
    assert list(dict.fromkeys(ids)) == expected
    for headers, body in receiver.received:
        payload = Webhook(secret).verify(body, headers)
        assert payload["id"] == headers["webhook-id"] and payload["type"] == "transfer.recorded"


@pytest.fixture(params=["sqlite", "postgres"])
def hooked(request, make_settings):
    server = ThreadServer(make_settings(request.param, webhooks_enabled=True, webhook_timeout_s=1.0,
                                       webhook_backoff_s_max=0.5)).start()
    receivers = {"flaky": Receiver(failures=3), "hanging": Receiver(hang=True),
                 "restarting": Receiver(), "steady": Receiver()}
    try:
        yield server, receivers
    finally:
        for receiver in receivers.values():
            receiver.release()
        server.stop()
        for receiver in receivers.values():
            receiver.stop()


def test_every_receiver_gets_every_event_in_order_whatever_the_others_do(hooked):
    server, receivers = hooked
    with server.client() as admin:
        secrets = {"flaky": _subscribe(admin, receivers["flaky"])["secret"]}
        given = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        for name in ("hanging", "restarting", "steady"):
            assert _subscribe(admin, receivers[name], secret=given)["secret"] is None
            secrets[name] = given
        account = open_account(admin)
        for number in range(EVENTS):
            if number == EVENTS // 2:
                receivers["restarting"].stop()
            _mint(admin, account)  # each completes while one receiver hangs
        receivers["restarting"].start()
        expected = [e["id"] for e in admin.get("/v1/events", params={
            "types": "transfer.recorded", "after": 0, "limit": 1000}).json()["items"]
            if e["data"]["to"] == account]
        assert len(expected) == EVENTS
        for name in ("flaky", "restarting", "steady"):
            wait_until(lambda r=receivers[name]: set(expected) <= set(r.ids()),
                       DELIVERED_WAIT_S, f"{name} to get every event")
        assert receivers["hanging"].ids() == []
        receivers["hanging"].release()
        wait_until(lambda: set(expected) <= set(receivers["hanging"].ids()), DELIVERED_WAIT_S,
                   "the hanging receiver, released, to get every event")
        for name, receiver in receivers.items():
            _check(receiver, secrets[name], expected)


def test_the_delivery_log_shows_failures_and_replay_sends_the_same_ids_again(hooked):
    server, receivers = hooked
    flaky, steady = receivers["flaky"], receivers["steady"]
    with server.client() as admin:
        hooks = {name: _subscribe(admin, r) for name, r in (("flaky", flaky), ("steady", steady))}
        account = open_account(admin)
        _mint(admin, account)
        wait_until(lambda: flaky.ids() and steady.ids(), DELIVERED_WAIT_S, "first deliveries")
        log = admin.get(f"/v1/webhooks/{hooks['flaky']['webhook_id']}/deliveries").json()["items"]
        assert [(d["outcome"], d["status"]) for d in reversed(log)] == [
            ("failed", 500), ("failed", 500), ("failed", 500), ("delivered", 200)]
        assert len({d["event_id"] for d in log}) == 1
        first = steady.ids()[0]
        position = int(first.removeprefix("evt_"))
        replayed = admin.post(f"/v1/webhooks/{hooks['steady']['webhook_id']}/replay",
                              json={"from_position": position})
        assert replayed.status_code == 200, replayed.text
        wait_until(lambda: steady.ids().count(first) == 2, DELIVERED_WAIT_S, "the replay")
        listed = admin.get("/v1/webhooks").json()["items"]
        assert {item["webhook_id"] for item in listed} >= {h["webhook_id"] for h in hooks.values()}
        assert all("secret" not in item for item in listed)
        assert admin.delete(f"/v1/webhooks/{hooks['steady']['webhook_id']}").status_code == 200
        assert_error(admin.get(f"/v1/webhooks/{hooks['steady']['webhook_id']}/deliveries"), 404,
                     "not_found")


def test_subscriptions_are_admin_only_and_bad_input_is_refused(hooked):
    server, receivers = hooked
    url = receivers["steady"].url
    with server.client() as admin, server.client(WRITER) as writer:
        assert_error(writer.post("/v1/webhooks", json={"url": url}), 403, "forbidden")
        assert_error(admin.post("/v1/webhooks", json={"url": "ftp://x/y"}), 422, "invalid_request")
        assert_error(admin.post("/v1/webhooks", json={"url": url, "types": ["nope"]}), 422,
                     "invalid_request")
        assert_error(admin.post("/v1/webhooks", json={"url": url, "secret": "whsec_" + "!" * 40}),
                     422, "invalid_request")
        assert_error(admin.post("/v1/webhooks", json={"url": url, "after": 10**12}), 422,
                     "position_past_head")
        assert_error(admin.post(f"/v1/webhooks/{new_id()}/replay", json={"from_position": 1}),
                     404, "not_found")
        hook = _subscribe(admin, receivers["steady"])
        assert_error(admin.post(f"/v1/webhooks/{hook['webhook_id']}/replay",
                                json={"from_position": 10**12}), 422, "position_past_head")
    store = server.service.webhooks.store
    if hasattr(store, "path"):  # SQLite: the file holds signing secrets
        assert store.path.stat().st_mode & 0o777 == 0o600


def test_a_subscription_is_created_once_by_its_id(hooked):
    server, receivers = hooked
    url, webhook_id = receivers["steady"].url, new_id()
    with server.client() as admin:
        first = admin.post("/v1/webhooks", json={"webhook_id": webhook_id, "url": url})
        assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
        again = admin.post("/v1/webhooks", json={"url": url},
                           headers={"Idempotency-Key": webhook_id})
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["webhook_id"] == webhook_id and again.json()["secret"] is None
        listed = [h for h in admin.get("/v1/webhooks").json()["items"] if h["webhook_id"] == webhook_id]
        assert len(listed) == 1
        differs = assert_error(admin.post("/v1/webhooks", json={"webhook_id": webhook_id,
                                                                "url": url + "/other"}),
                               409, "idempotency_conflict")
        assert f"webhook_id {webhook_id} was first used with a different 'url';" in differs["message"]
        secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
        differs = assert_error(admin.post("/v1/webhooks", json={
            "webhook_id": webhook_id, "url": url + "/other", "types": ["transfer.settled"],
            "secret": secret}), 409, "idempotency_conflict")
        assert "a different 'url', 'types' and 'secret';" in differs["message"]
        assert url not in differs["message"] and "whsec_" not in differs["message"]
        assert_error(admin.post("/v1/webhooks", json={"webhook_id": webhook_id, "url": url},
                                headers={"Idempotency-Key": new_id()}), 422, "invalid_request")
        assert_error(admin.delete(f"/v1/webhooks/{webhook_id}",
                                  headers={"Idempotency-Key": webhook_id}), 422, "invalid_request")
