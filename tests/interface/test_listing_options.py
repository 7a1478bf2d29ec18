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


def test_history_and_transactions_filter_by_movement_kind(api, admin):
    account, _ = _moves(admin)
    fees = admin.get(f"/v1/accounts/{account}/history", params={"type": "fee"}).json()
    assert [item["type"] for item in fees["items"]] == ["fee"]
    transfers = admin.get(f"/v1/accounts/{account}/transactions",
                          params={"kind": "transfer", "order": "desc"}).json()
    assert [item["amount"] for item in transfers["items"]] == ["4", "3", "2", "1"]
    assert_error(admin.get(f"/v1/accounts/{account}/history", params={"type": "gift"}),
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
