"""A caller's references on a movement (issue 16): ``metadata`` and
``external_ref`` are checked as ``reason`` is, stored in the movement's
event, part of what was asked (a repeat with others is a conflict), and
passed on by the business events."""

from __future__ import annotations

import httpx
import pytest

from tests.interface.helpers import assert_error, funded_account, new_id, open_account, transfer_body

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
