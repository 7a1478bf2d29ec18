"""A caller's references on a movement (issue 16): ``metadata`` and
``external_ref`` are checked as ``reason`` is, stored in the movement's
event, part of what was asked (a repeat with others is a conflict), and
passed on by the business events."""

from __future__ import annotations

import httpx
import pytest

from tests.interface.helpers import assert_error, funded_account, new_id, open_account, transfer_body
from tests.support.settling import settle_through

REFS = {"metadata": {"order_id": "ord-42", "channel": "search"}, "external_ref": "ord-42/1"}


def _event_of(client: httpx.Client, transfer_id: str, after: int) -> dict:
    page = client.get("/v1/events", params={"after": after, "limit": 1000}).json()
    return next(e for e in page["items"] if e["data"].get("transfer_id") == transfer_id)


def _head(client: httpx.Client) -> int:
    return client.get("/v1/events", params={"limit": 1}).json()["position"]


def _movements(source: str, destination: str) -> list[tuple[str, str, dict]]:
    """Each movement command: its route, id field and body (with references)."""
    return [
        ("/v1/transfers", "transfer_id", transfer_body(source, destination, "1", **REFS)),
        ("/v1/fees", "charge_id", {"charge_id": new_id(), "account_id": source,
                                   "service_type": "search", **REFS}),
        ("/v1/holds", "hold_id", {"hold_id": new_id(), "account_id": source, "amount": "1",
                                  **REFS}),
        ("/v1/rewards", "reward_id", {"reward_id": new_id(), "account_id": destination,
                                      "reward_type": "referral", "amount": "1", **REFS}),
        ("/v1/mint", "transfer_id", {"transfer_id": new_id(), "to": destination, "amount": "1",
                                     **REFS}),
        ("/v1/burn", "transfer_id", {"transfer_id": new_id(), "from": source, "amount": "1",
                                     **REFS}),
    ]


def test_every_movement_command_stores_its_references_in_its_event(api, admin):
    source, destination = funded_account(admin, "50"), open_account(admin)
    start = _head(admin)
    for route, id_field, body in _movements(source, destination):
        answer = admin.post(route, json=body)
        assert answer.status_code == 201, (route, answer.text)
        data = _event_of(admin, body[id_field], start)["data"]
        assert data["metadata"] == REFS["metadata"], route
        assert data["external_ref"] == REFS["external_ref"], route


def test_a_repeat_with_other_references_is_a_conflict_and_the_same_a_replay(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    body = transfer_body(source, destination, "1", **REFS)
    assert admin.post("/v1/transfers", json=body).status_code == 201
    assert admin.post("/v1/transfers", json=body).status_code == 200
    reordered = {**body, "metadata": dict(reversed(list(REFS["metadata"].items())))}
    assert admin.post("/v1/transfers", json=reordered).status_code == 200
    for changed in ({**body, "metadata": {"order_id": "ord-43"}},
                    {**body, "external_ref": "other"},
                    {k: v for k, v in body.items() if k != "metadata"}):
        assert_error(admin.post("/v1/transfers", json=changed), 409, "idempotency_conflict")


def test_a_movement_without_references_keeps_its_earlier_shape(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    start = _head(admin)
    body = transfer_body(source, destination, "1")
    assert admin.post("/v1/transfers", json=body).status_code == 201
    data = _event_of(admin, body["transfer_id"], start)["data"]
    assert "metadata" not in data and "external_ref" not in data


BAD_VALUES = [
    {"metadata": {f"k{i}": "v" for i in range(17)}},
    {"metadata": {"k" * 65: "v"}},
    {"metadata": {"": "v"}},
    {"metadata": {"bad key": "v"}},
    {"metadata": {"k": "v" * 257}},
    {"metadata": {"k": "line\nbreak"}},
    {"metadata": {"k": "right\u202eleft"}},
    {"external_ref": ""},
    {"external_ref": "r" * 257},
    {"external_ref": "tab\there"},
    {"external_ref": "\u2066isolate"},
]
"""Well-typed but out of bounds or with forbidden characters: 422."""
BAD_TYPES = [
    {"metadata": {"k": 1}},
    {"metadata": {"k": None}},
    {"metadata": {"k": {"nested": "v"}}},
    {"metadata": ["k", "v"]},
    {"metadata": "k=v"},
    {"external_ref": 42},
]
"""Not the type the contract names (a map of strings, a string): 400, as
any other field of the wrong type."""


@pytest.mark.parametrize(("refs", "status", "code"), [
    *((refs, 422, "invalid_request") for refs in BAD_VALUES),
    *((refs, 400, "bad_request") for refs in BAD_TYPES),
])
def test_bad_references_are_refused_and_leave_no_trace(api, admin, refs, status, code):
    source, destination = funded_account(admin, "5"), open_account(admin)
    body = transfer_body(source, destination, "1", **refs)
    head = _head(admin)
    assert_error(admin.post("/v1/transfers", json=body), status, code)
    assert _head(admin) == head  # nothing was written
    assert_error(admin.get(f"/v1/transfers/{body['transfer_id']}"), 404, "transfer_not_found")
    assert admin.get(f"/v1/accounts/{source}/balance").json()["balance"] == "5"


def test_a_movement_read_shows_its_references_and_a_reward_its_type(api, admin):
    source, destination = funded_account(admin, "50"), open_account(admin)
    for route, id_field, body in _movements(source, destination):
        assert admin.post(route, json=body).status_code == 201, route
        shown = admin.get(f"/v1/transfers/{body[id_field]}").json()
        assert (shown["metadata"], shown["external_ref"]) == (REFS["metadata"],
                                                              REFS["external_ref"]), route
        assert shown["reward_type"] == ("referral" if route == "/v1/rewards" else None), route
    listed = admin.get(f"/v1/accounts/{destination}/transactions").json()["items"]
    assert listed and all(item["external_ref"] == REFS["external_ref"] for item in listed)


def test_transfer_from_and_reversal_take_references_too(api, admin):
    owner, spender, destination = funded_account(admin, "10"), open_account(admin), open_account(admin)
    assert admin.put(f"/v1/allowances/{owner}/{spender}", json={"amount": "5"}).status_code == 200
    by_spender = {**transfer_body(owner, destination, "2", **REFS), "spender": spender}
    assert admin.post("/v1/transfers/from", json=by_spender).status_code == 201
    settle_through(api, by_spender["transfer_id"])
    reversal = {"reversal_id": new_id(), "reason": "refund", "metadata": {"ticket": "T-9"},
                "external_ref": "refund-9"}
    reversed_ = admin.post(f"/v1/transfers/{by_spender['transfer_id']}/reverse", json=reversal)
    assert reversed_.status_code == 201, reversed_.text
    for transfer_id, refs in ((by_spender["transfer_id"], REFS),
                              (reversal["reversal_id"], reversal)):
        shown = admin.get(f"/v1/transfers/{transfer_id}").json()
        assert (shown["metadata"], shown["external_ref"]) == (refs["metadata"],
                                                              refs["external_ref"])
    other = {**reversal, "external_ref": "refund-10"}
    assert_error(admin.post(f"/v1/transfers/{by_spender['transfer_id']}/reverse", json=other),
                 409, "idempotency_conflict")


def test_history_entries_show_their_movement_references_and_reward_type(api, admin):
    account = funded_account(admin, "5")
    reward = {"reward_id": new_id(), "account_id": account, "reward_type": "referral",
              "amount": "1", **REFS}
    assert admin.post("/v1/rewards", json=reward).status_code == 201
    items = admin.get(f"/v1/accounts/{account}/history").json()["items"]
    minted, rewarded = items
    assert (minted["metadata"], minted["external_ref"], minted["reward_type"]) == (None, None, None)
    assert (rewarded["metadata"], rewarded["external_ref"], rewarded["reward_type"]) == (
        REFS["metadata"], REFS["external_ref"], "referral")


@pytest.mark.parametrize("listing", ["history", "transactions"])
def test_history_and_transactions_filter_by_reward_type(api, admin, listing):
    account = funded_account(admin, "5")
    for reward_type in ("referral", "streak", "referral"):
        body = {"reward_id": new_id(), "account_id": account, "reward_type": reward_type,
                "amount": "1"}
        assert admin.post("/v1/rewards", json=body).status_code == 201
    path = f"/v1/accounts/{account}/{listing}"
    every = admin.get(path, params={"reward_type": "referral", "limit": 1, "order": "desc"})
    first = every.json()
    assert [item["reward_type"] for item in first["items"]] == ["referral"]
    second = admin.get(path, params={"reward_type": "referral", "limit": 1, "order": "desc",
                                     "cursor": first["next_cursor"]}).json()
    assert [item["reward_type"] for item in second["items"]] == ["referral"]
    assert second["items"][0]["position"] < first["items"][0]["position"]
    assert second["has_more"] is False
    assert admin.get(path, params={"reward_type": "none"}).json()["items"] == []
    assert_error(admin.get(path, params={"reward_type": ""}), 422, "invalid_request")


def test_movements_are_found_by_their_external_ref_a_page_at_a_time(api, admin):
    source, destination = funded_account(admin, "50"), open_account(admin)
    ref = f"order-{new_id()}"
    found = [transfer_body(source, destination, "1", external_ref=ref),
             transfer_body(source, destination, "2", external_ref=f"{ref}-other"),
             transfer_body(source, destination, "3", external_ref=ref)]
    for body in found:
        assert admin.post("/v1/transfers", json=body).status_code == 201
    fee = {"charge_id": new_id(), "account_id": source, "service_type": "search",
           "external_ref": ref}
    assert admin.post("/v1/fees", json=fee).status_code == 201
    expected = [found[0]["transfer_id"], found[2]["transfer_id"], fee["charge_id"]]
    for order, ids in (("asc", expected), ("desc", expected[::-1])):
        seen, cursor = [], None
        while True:
            params = {"external_ref": ref, "limit": 2, "order": order,
                      **({"cursor": cursor} if cursor else {})}
            page = admin.get("/v1/transfers", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert all(item["external_ref"] == ref for item in body["items"])
            seen += [item["transfer_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            assert body["has_more"] is (cursor is not None)
            if cursor is None:
                break
        assert seen == ids, order
    fees = admin.get("/v1/transfers", params={"external_ref": ref, "kind": "fee"}).json()
    assert [item["transfer_id"] for item in fees["items"]] == [fee["charge_id"]]
    assert admin.get("/v1/transfers", params={"external_ref": "nobody's"}).json()["items"] == []


def test_a_cursor_of_one_external_ref_is_refused_for_another_and_bad_asks_are_refused(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    ref = f"order-{new_id()}"
    for _ in range(2):
        body = transfer_body(source, destination, "1", external_ref=ref)
        assert admin.post("/v1/transfers", json=body).status_code == 201
    cursor = admin.get("/v1/transfers", params={"external_ref": ref, "limit": 1}).json()[
        "next_cursor"]
    assert cursor is not None
    assert_error(admin.get("/v1/transfers", params={"external_ref": "other", "cursor": cursor}),
                 422, "invalid_request")
    history_cursor = admin.get(f"/v1/accounts/{destination}/history",
                               params={"limit": 1}).json()["next_cursor"]
    assert_error(admin.get("/v1/transfers", params={"external_ref": ref,
                                                    "cursor": history_cursor}),
                 422, "invalid_request")
    assert "external_ref" in assert_error(admin.get("/v1/transfers"), 422,
                                          "invalid_request")["message"]
    assert_error(admin.get("/v1/transfers", params={"external_ref": "r" * 257}),
                 422, "invalid_request")
    assert_error(admin.get("/v1/transfers", params={"external_ref": ref, "ref": "x"}),
                 400, "bad_request")


def test_the_raw_audit_listing_adds_decoded_amounts_and_times_beside_the_stored_state(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    body = transfer_body(source, destination, "1.5", **REFS)
    assert admin.post("/v1/transfers", json=body).status_code == 201
    page = admin.get("/v1/audit/events", params={"aggregate_id": body["transfer_id"]}).json()
    recorded = page["items"][0]
    assert recorded["state"]["amount"] == 150_000_000  # exactly as stored: base units
    assert recorded["decoded"]["amount"] == "1.5"
    assert recorded["decoded"]["source_balance_after"] == "3.5"
    assert recorded["decoded"]["destination_balance_after"] == "1.5"
    assert recorded["decoded"]["timestamp"].endswith("Z")
    assert recorded["state"]["external_ref"] == REFS["external_ref"]
    assert "reason" not in recorded["decoded"] and "kind" not in recorded["decoded"]


def test_a_movements_later_events_carry_its_references_for_subscribers(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    start = _head(admin)
    body = transfer_body(source, destination, "2", **REFS)
    assert admin.post("/v1/transfers", json=body).status_code == 201
    hold = {"hold_id": new_id(), "account_id": source, "amount": "1", **REFS}
    assert admin.post("/v1/holds", json=hold).status_code == 201
    assert admin.post(f"/v1/holds/{hold['hold_id']}/capture", json={"amount": "0.5"}
                      ).status_code == 200
    settle_through(api, body["transfer_id"])
    reversal = {"reversal_id": new_id(), "reason": "refund"}
    assert admin.post(f"/v1/transfers/{body['transfer_id']}/reverse", json=reversal
                      ).status_code == 201
    page = admin.get("/v1/events", params={"after": start, "limit": 1000,
                                           "types": "transfer.reversed,hold.captured"}).json()
    reversed_, captured = sorted(page["items"], key=lambda e: e["type"], reverse=True)
    assert reversed_["data"] == {
        "transfer_id": body["transfer_id"], "reversal_id": reversal["reversal_id"],
        "kind": "transfer", "amount": "2", "from": source, "to": destination, **REFS}
    assert captured["data"]["amount"] == "0.5"  # the captured amount, not the held one
    assert (captured["data"]["from"], captured["data"]["external_ref"]) == (
        source, REFS["external_ref"])
