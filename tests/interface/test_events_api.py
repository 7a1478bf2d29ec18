"""GET /v1/events: business events after a position, paged and long-polled,
on SQLite and on PostgreSQL with Redis."""

from __future__ import annotations

import threading

import httpx
import pytest
from solders.keypair import Keypair

from tests.interface.helpers import assert_error, funded_account, new_id, open_account, transfer_body
from tests.support.http import READER, WRITER


def _events(client: httpx.Client, **params) -> dict:
    answer = client.get("/v1/events", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _all_after(client: httpx.Client, after: int, **params) -> list[dict]:
    """Every event after ``after``, page by page."""
    found: list[dict] = []
    while True:
        page = _events(client, after=after, **params)
        found += page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            return found


def test_each_business_act_is_one_event_in_log_order(api, admin):
    start = _events(admin, limit=1000, after=0)["position"]
    source = funded_account(admin, "10")
    destination = open_account(admin)
    moved = transfer_body(source, destination, "2.5")
    assert admin.post("/v1/transfers", json=moved).status_code == 201
    fee = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": source,
                                       "service_type": "search"})
    assert fee.status_code == 201
    hold_id = new_id()
    assert admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": source,
                                         "service_type": "goal", "expires_in_s": 60}
                      ).status_code == 201
    assert admin.post(f"/v1/holds/{hold_id}/void").status_code == 200
    reward = admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": destination,
                                             "reward_type": "referral", "amount": "7"})
    assert reward.status_code == 201
    address = str(Keypair().pubkey())
    assert admin.post(f"/v1/accounts/{source}/wallets", json={"address": address}
                      ).status_code == 201
    assert admin.delete(f"/v1/accounts/{source}/wallets/{address}").status_code == 200
    events = _all_after(admin, start)
    assert [e["type"] for e in events] == [
        "transfer.recorded", "transfer.recorded", "fee.charged", "hold.placed", "hold.voided",
        "reward.paid", "wallet.connected", "wallet.disconnected",
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [e["id"] for e in events] == [f"evt_{p}" for p in positions]
    transfer = events[1]["data"]
    assert transfer == {"transfer_id": moved["transfer_id"], "kind": "transfer", "amount": "2.5",
                        "from": source, "to": destination, "reason": "test"}
    assert events[0]["data"]["kind"] == "mint" and events[0]["data"]["amount"] == "10"
    voided = events[4]["data"]  # a later event carries what the recording said
    assert (voided["transfer_id"], voided["from"], voided["amount"]) == (hold_id, source, "1")
    assert voided["kind"] == events[3]["data"]["kind"] and voided["to"] == events[3]["data"]["to"]
    assert events[6]["data"]["address"] == address
    assert events[5]["data"]["reward_type"] == "referral"  # its own field, not only the reason
    assert "reward_type" not in transfer  # only a reward carries one
    assert all(e["occurred_at"].endswith("Z") for e in events)


def test_a_page_resumes_where_the_last_stopped_and_ids_are_stable(api, admin):
    start = _events(admin)["position"]
    for _ in range(3):
        funded_account(admin, "1")
    whole = _all_after(admin, start)
    one_by_one = _all_after(admin, start, limit=1)
    assert one_by_one == whole and len(whole) == 3
    filtered = _all_after(admin, 0, types="transfer.recorded", limit=2)
    assert {e["type"] for e in filtered} == {"transfer.recorded"}
    assert [e["id"] for e in filtered if e["position"] > start] == [e["id"] for e in whole]


def test_a_read_key_reads_events_and_a_write_key_does_not(api):
    with api.client(READER) as reader, api.client(WRITER) as writer:
        assert reader.get("/v1/events").status_code == 200
        assert_error(writer.get("/v1/events"), 403, "forbidden")


def test_bad_arguments_are_refused_in_the_api_shape(api, admin):
    head = _events(admin)["position"]
    assert_error(admin.get("/v1/events", params={"types": "transfer.recorded,nope"}),
                 422, "invalid_request")
    assert_error(admin.get("/v1/events", params={"after": head + 1000}), 422,
                 "position_past_head")
    assert_error(admin.get("/v1/events", params={"wait_s": 31}), 422, "invalid_request")
    assert_error(admin.get("/v1/events", params={"after": -1}), 422, "invalid_request")


def test_a_long_poll_answers_with_the_event_that_arrives_while_it_waits(api, admin):
    head = _events(admin)["position"]
    answers: list[dict] = []

    def long_poll() -> None:
        with api.client(READER) as reader:
            answers.append(_events(reader, after=head, wait_s=30, types="reward.paid"))

    poller = threading.Thread(target=long_poll)
    poller.start()
    funded_account(admin, "1")  # not a reward: the poll goes on waiting
    account = open_account(admin)
    reward_id = new_id()
    assert admin.post("/v1/rewards", json={"reward_id": reward_id, "account_id": account,
                                           "reward_type": "referral", "amount": "1"}
                      ).status_code == 201
    poller.join(60)
    assert not poller.is_alive()
    assert [e["data"]["transfer_id"] for e in answers[0]["items"]] == [reward_id]


@pytest.mark.parametrize("wait_s", [0, 0.2])
def test_a_poll_with_nothing_new_answers_empty_at_the_head(api, admin, wait_s):
    head = _events(admin)["position"]
    page = _events(admin, after=head, wait_s=wait_s)
    assert page["items"] == [] and page["next_after"] >= head and not page["has_more"]


def _sse(client: httpx.Client, count: int, **kwargs) -> list[dict]:
    """The first ``count`` SSE events of a stream (comments skipped), then
    the connection is closed."""
    found: list[dict] = []
    with client.stream("GET", "/v1/events/stream", **kwargs) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        fields: dict = {}
        for line in answer.iter_lines():
            if line == "":
                if "data" in fields:
                    found.append(fields)
                    if len(found) == count:
                        return found
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return found


def test_a_stream_resumes_after_its_last_event_id(api, admin):
    import json

    start = _events(admin)["position"]
    accounts = [funded_account(admin, "1") for _ in range(4)]
    with api.client(READER) as reader:
        first = _sse(reader, 2, params={"after": start, "types": "transfer.recorded"})
        rest = _sse(reader, 2, params={"types": "transfer.recorded"},
                    headers={"Last-Event-ID": first[-1]["id"]})
    streamed = [json.loads(event["data"]) for event in first + rest]
    assert [e["data"]["to"] for e in streamed] == accounts
    assert [event["id"] for event in first + rest] == [e["id"] for e in streamed]
    assert [event["event"] for event in first + rest] == ["transfer.recorded"] * 4
    assert streamed == _all_after(admin, start, types="transfer.recorded")


def test_a_stream_delivers_what_is_committed_while_it_is_open(api, admin):
    head = _events(admin)["position"]
    received: list[dict] = []

    def listen() -> None:
        with api.client(READER) as reader:
            received.extend(_sse(reader, 1, params={"after": head, "types": "reward.paid"}))

    listener = threading.Thread(target=listen)
    listener.start()
    reward_id = new_id()
    assert admin.post("/v1/rewards", json={"reward_id": reward_id, "account_id": open_account(admin),
                                           "reward_type": "referral", "amount": "1"}
                      ).status_code == 201
    listener.join(60)
    assert not listener.is_alive() and reward_id in received[0]["data"]


def test_a_stream_refuses_a_bad_start_before_streaming(api, admin):
    head = _events(admin)["position"]
    assert_error(admin.get("/v1/events/stream", headers={"Last-Event-ID": "nope"}), 422,
                 "invalid_request")
    assert_error(admin.get("/v1/events/stream", params={"after": head + 1000}), 422,
                 "position_past_head")
    assert_error(admin.get("/v1/events/stream", params={"types": "nope"}), 422, "invalid_request")
    with api.client(WRITER) as writer:
        assert_error(writer.get("/v1/events/stream"), 403, "forbidden")


def test_long_polls_past_the_bound_are_refused_with_retry_after(api, admin):
    from interface.http.event_feed import WaitSlots

    slots = api.app.state.wait_slots = WaitSlots(per_key=1, total=10)
    head = _events(admin)["position"]
    answers: list[dict] = []

    def long_poll() -> None:
        with api.client(READER) as reader:
            answers.append(_events(reader, after=head, wait_s=30, types="reward.paid"))

    poller = threading.Thread(target=long_poll)
    poller.start()
    try:
        while not slots.held and poller.is_alive():
            threading.Event().wait(0.01)  # until the poll holds its slot
        with api.client(READER) as reader:
            refused = reader.get("/v1/events", params={"after": head, "wait_s": 5})
            assert_error(refused, 429, "rate_limited")
            assert refused.headers["Retry-After"] == "1"
            assert reader.get("/v1/events/stream").status_code == 429
            assert reader.get("/v1/events", params={"after": head}).status_code == 200
        account = open_account(admin)
        assert admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": account,
                                               "reward_type": "referral", "amount": "1"}
                          ).status_code == 201
        poller.join(60)
        assert not poller.is_alive() and len(answers[0]["items"]) == 1
        assert slots.held == 0
    finally:
        del api.app.state.wait_slots
