"""The client lists business events: page by page from a position, and a
long poll that answers with the event committed while it waits."""

from __future__ import annotations

import threading
from decimal import Decimal

import anyio

from interface.client import AsyncLedgerClient, LedgerClient
from tests.support.http import ADMIN, wait_until


def test_events_iterate_from_a_position_and_a_poll_waits_for_the_next(client):
    start = client.events_page().position
    account = client.open_account().account_id
    minted = [client.mint(account, Decimal(n)).transfer_id for n in range(1, 6)]
    events = list(client.events(start, types=["transfer.recorded"], page_size=2))
    assert [event.data["transfer_id"] for event in events] == [str(t) for t in minted]
    assert [Decimal(event.data["amount"]) for event in events] == [Decimal(n) for n in range(1, 6)]
    assert all(event.id == f"evt_{event.position}" for event in events)
    head = client.events_page(events[-1].position).position
    polled: list = []
    poller = threading.Thread(target=lambda: polled.append(
        client.events_page(head, types=["reward.paid"], wait_s=20)))
    poller.start()
    reward = client.distribute_reward(account, Decimal("2"), "referral")
    poller.join(60)
    assert [event.data["transfer_id"] for event in polled[0].items] == [str(reward.reward_id)]


def test_the_async_client_lists_the_same_events(served):
    with LedgerClient(served.url, ADMIN) as client:
        start = client.events_page().position
        client.mint(client.open_account().account_id, Decimal("1"))
        expected = list(client.events(start, types=["transfer.recorded"]))

    async def scenario() -> list:
        async with AsyncLedgerClient(served.url, ADMIN) as client:
            return [event async for event in client.events(start, types=["transfer.recorded"])]

    assert anyio.run(scenario) == expected and expected  # settling adds no such event


class Receiver:
    """A webhook receiver on loopback: keeps each delivery it acknowledges
    and sets ``arrived`` on the first."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.received: list[tuple[dict, str]] = []
        self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the library's name
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_service_subscribes_a_webhook_and_verifies_what_arrives(client):
    """Created once per webhook_id (the generated secret answered that once
    and never shown by repr), listed, delivered signed, logged, replayed
    and deleted."""
    import json
    from uuid import uuid4

    from standardwebhooks import Webhook

    receiver = Receiver()
    try:
        webhook_id = uuid4()
        created = client.create_webhook(receiver.url, types=["fee.charged"],
                                        webhook_id=webhook_id)
        assert created.secret and created.secret.startswith("whsec_")
        assert created.secret not in repr(created) and created.types == ("fee.charged",)
        again = client.create_webhook(receiver.url, types=["fee.charged"],
                                      webhook_id=webhook_id)
        assert (again.webhook_id, again.secret) == (webhook_id, None)
        assert webhook_id in [hook.webhook_id for hook in client.webhooks()]
        account = client.open_account().account_id
        client.mint(account, Decimal("5"))
        fee = client.deduct_service_fee(account, "search", external_ref="search-1")
        assert receiver.arrived.wait(120), "no delivery"
        headers, body = receiver.received[0]
        event = Webhook(created.secret).verify(body, headers)
        assert event["type"] == "fee.charged" and event["data"]["external_ref"] == "search-1"
        assert json.loads(body)["data"]["transfer_id"] == str(fee.charge_id)
        delivered = wait_until(lambda: client.webhook_deliveries(webhook_id), 120,
                               "the delivery logged")  # logged after the receiver answered
        assert (delivered[0].outcome, delivered[0].status) == ("delivered", 200)
        assert client.replay_webhook(webhook_id, 1).delivered_position == 0
        assert client.delete_webhook(webhook_id).webhook_id == webhook_id
        assert webhook_id not in [hook.webhook_id for hook in client.webhooks()]
    finally:
        receiver.stop()
