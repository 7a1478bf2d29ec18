"""The client lists business events: page by page from a position, and a
long poll that answers with the event committed while it waits."""

from __future__ import annotations

import threading
from decimal import Decimal

import anyio

from interface.client import AsyncLedgerClient, LedgerClient
from tests.support.http import ADMIN


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
