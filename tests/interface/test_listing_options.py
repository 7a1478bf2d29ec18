"""History and transactions in both orders, by time range and movement
kind, with has_more beside next_cursor; and unknown query parameters
refused on every route (they used to be ignored: ``?order=desc`` answered
oldest first)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.interface.helpers import assert_error, funded_account, new_id, open_account, transfer_body


def _moves(admin, count: int = 4) -> tuple[str, list[dict]]:
    source, destination = funded_account(admin, "100"), open_account(admin)
    moved = [admin.post("/v1/transfers", json=transfer_body(source, destination, str(n))).json()
             for n in range(1, count + 1)]
    fee = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": destination,
                                       "service_type": "search"})
    assert fee.status_code == 201, fee.text
    return destination, moved


def _every_page(admin, path: str, params: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        page = admin.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["has_more"] is (body["next_cursor"] is not None)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("listing", ["history", "transactions"])
def test_newest_first_pages_are_the_oldest_first_ones_reversed(api, admin, listing):
    account, _ = _moves(admin)
    path = f"/v1/accounts/{account}/{listing}"
    oldest_first = _every_page(admin, path, {"limit": 2})
    newest_first = _every_page(admin, path, {"limit": 2, "order": "desc"})
    assert len(oldest_first) == 5
    assert [i["position"] for i in newest_first] == [i["position"] for i in oldest_first][::-1]


def test_a_cursor_continues_only_in_its_own_order(api, admin):
    account, _ = _moves(admin)
    page = admin.get(f"/v1/accounts/{account}/history", params={"limit": 1, "order": "desc"})
    cursor = page.json()["next_cursor"]
    assert_error(admin.get(f"/v1/accounts/{account}/history", params={"cursor": cursor}),
                 422, "invalid_request")


@pytest.mark.parametrize(("path", "issued_with", "sent_with"), [
    ("/v1/accounts/{account}/transactions", {"kind": "transfer"}, {"kind": "fee"}),
    ("/v1/accounts/{account}/transactions", {"kind": "transfer"}, {}),
    ("/v1/accounts/{account}/history", {}, {"type": "fee"}),
    ("/v1/accounts/{account}/history", {"since": "2000-01-01T00:00:00Z"},
     {"since": "2000-01-01T00:00:01Z"}),
    ("/v1/accounts/{account}/history", {"since": "2000-01-01T00:00:00Z"},
     {"until": "2999-01-01T00:00:00Z"}),
    ("/v1/accounts", {"kind": "user"}, {"status": "frozen"}),
    ("/v1/accounts", {}, {"kind": "user"}),
], ids=["kind", "kind-dropped", "type-added", "since-moved", "range-other-end", "accounts-status",
        "accounts-kind-added"])
def test_a_cursor_of_other_filters_is_refused(api, admin, path, issued_with, sent_with):
    """A cursor says "after position N" of one listing with its filters: with
    other filters it would page on from a place that listing never reached
    (a fee listing from a transfer's cursor skipped every earlier fee)."""
    account, _ = _moves(admin)
    open_account(admin)
    path = path.format(account=account)
    cursor = admin.get(path, params={**issued_with, "limit": 1}).json()["next_cursor"]
    assert cursor
    again = admin.get(path, params={**issued_with, "cursor": cursor})
    assert again.status_code == 200, again.text
    error = assert_error(admin.get(path, params={**sent_with, "cursor": cursor}),
                         422, "invalid_request")
    assert "with other filters" in error["message"], error


def test_a_cursor_takes_the_same_filters_however_the_times_are_spelt(api, admin):
    account, _ = _moves(admin)
    path = f"/v1/accounts/{account}/history"
    cursor = admin.get(path, params={"since": "2000-01-01T00:00:00Z", "limit": 1}
                       ).json()["next_cursor"]
    again = admin.get(path, params={"since": "2000-01-01t01:00:00+01:00", "cursor": cursor})
    assert again.status_code == 200, again.text


def test_history_and_transactions_filter_by_movement_kind(api, admin):
    account, _ = _moves(admin)
    fees = admin.get(f"/v1/accounts/{account}/history", params={"type": "fee"}).json()
    assert [item["type"] for item in fees["items"]] == ["fee"]
    transfers = admin.get(f"/v1/accounts/{account}/transactions",
                          params={"kind": "transfer", "order": "desc"}).json()
    assert [item["amount"] for item in transfers["items"]] == ["4", "3", "2", "1"]
    assert_error(admin.get(f"/v1/accounts/{account}/history", params={"type": "gift"}),
                 422, "invalid_request")


def test_history_takes_kind_like_transactions_and_type_as_its_older_name(api, admin):
    account, _ = _moves(admin)
    path = f"/v1/accounts/{account}/history"
    by_kind = admin.get(path, params={"kind": "fee"}).json()["items"]
    assert [item["type"] for item in by_kind] == ["fee"]
    assert admin.get(path, params={"type": "fee"}).json()["items"] == by_kind
    assert admin.get(path, params={"kind": "fee", "type": "fee"}).json()["items"] == by_kind
    assert_error(admin.get(path, params={"kind": "fee", "type": "transfer"}),
                 422, "invalid_request")


def test_history_filters_by_a_time_range_both_ends_included(api, admin):
    account, _ = _moves(admin, count=3)
    every = admin.get(f"/v1/accounts/{account}/history").json()["items"]
    second, third = every[1]["created_at"], every[2]["created_at"]
    between = admin.get(f"/v1/accounts/{account}/history",
                        params={"since": second, "until": third}).json()["items"]
    assert [i["position"] for i in between] == [
        i["position"] for i in every if second <= i["created_at"] <= third]
    assert between and between[0]["position"] == every[1]["position"]
    later = (datetime.fromisoformat(every[-1]["created_at"]) + timedelta(seconds=1)).isoformat()
    assert admin.get(f"/v1/accounts/{account}/transactions",
                     params={"since": later}).json()["items"] == []
    assert_error(admin.get(f"/v1/accounts/{account}/history",
                           params={"since": third, "until": second}), 422, "invalid_request")
    assert_error(admin.get(f"/v1/accounts/{account}/history", params={"until": "yesterday"}),
                 422, "invalid_request")


@pytest.mark.parametrize(("method", "path", "params"), [
    ("GET", "/v1/accounts/{account}/history", {"order": "desc", "sort": "desc"}),
    ("GET", "/v1/accounts/{account}/balance", {"order": "desc"}),
    ("GET", "/v1/accounts", {"knd": "user"}),
    ("GET", "/v1/system", {"x": "1"}),
    ("GET", "/health", {"verbose": "1"}),
    ("POST", "/v1/accounts", {"dry_run": "1"}),
])
def test_unknown_query_parameters_are_refused_on_every_route(api, admin, method, path, params):
    account = open_account(admin)
    body = {"account_id": new_id(), "kind": "user"} if method == "POST" else None
    response = admin.request(method, path.format(account=account), params=params, json=body)
    error = assert_error(response, 400, "bad_request")
    assert "unknown query parameter" in error["message"]
    assert "'order'" not in error["message"] or "history" not in path
    if method == "POST":
        assert admin.get(f"/v1/accounts/{body['account_id']}/balance").status_code == 404
