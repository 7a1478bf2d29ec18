"""Who asked for each movement: every command's events record the API key's
name (never its token) and the request's X-Request-ID, and the audit events,
the history and the transactions show them."""

from __future__ import annotations

import httpx

from tests.interface.helpers import funded_account, log_position, new_id, open_account
from tests.support.http import ADMIN, API_KEYS, READ_WRITE, WRITER, bearer

TOKENS = (ADMIN, WRITER, READ_WRITE, "reader-token")


def asked(request_id: str) -> dict[str, str]:
    return {"X-Request-ID": request_id}


def events_after(admin: httpx.Client, position: int) -> list[dict]:
    """Every stored event after ``position``, through the audit listing."""
    items: list[dict] = []
    after: int | None = position
    while after is not None:
        page = admin.get("/v1/audit/events", params={"after_position": after, "limit": 1000})
        assert page.status_code == 200, page.text
        items += [item for item in page.json()["items"] if item["position"] > position]
        after = page.json()["next_after_position"]
    return items


def attributed(items: list[dict]) -> set[tuple[str | None, str | None]]:
    return {(item["requested_by"], item["request_id"]) for item in items}


def test_mint_burn_freeze_and_pricing_are_attributed_in_the_audit_events(api, admin):
    account = open_account(admin)
    steps = [
        ("post", "/v1/mint", {"transfer_id": new_id(), "to": account, "amount": "5"}),
        ("post", "/v1/burn", {"transfer_id": new_id(), "from": account, "amount": "1"}),
        ("post", f"/v1/accounts/{account}/freeze", None),
        ("put", "/v1/pricing/goal", {"token_cost": "2.5"}),
    ]
    for number, (method, path, body) in enumerate(steps):
        before = log_position(api)
        answer = admin.request(method, path, json=body, headers=asked(f"trace-{number}"))
        assert answer.status_code in (200, 201), answer.text
        written = events_after(admin, before)
        assert written, path
        assert attributed(written) == {("admin", f"trace-{number}")}, path
        for item in written:  # the stored state carries them: what a proof covers
            assert item["state"]["requested_by"] == "admin"
            assert item["state"]["request_id"] == f"trace-{number}"
    goal = next(service for service in admin.get("/v1/pricing").json()["services"]
                if service["service_type"] == "goal")
    assert (goal["rules"][-1]["requested_by"], goal["rules"][-1]["request_id"]) == (
        "admin", "trace-3")


def test_a_repeat_from_another_key_keeps_the_first_requests_provenance(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1"}
    before = log_position(api)
    with api.client(WRITER) as writer, api.client(READ_WRITE) as other:
        first = writer.post("/v1/transfers", json=body, headers=asked("first-ask"))
        again = other.post("/v1/transfers", json=body, headers=asked("second-ask"))
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert attributed(events_after(admin, before)) == {("writer", "first-ask")}


def test_a_request_without_an_id_records_the_one_the_service_made(api, admin):
    before = log_position(api)
    answer = admin.post("/v1/accounts", json={"account_id": new_id(), "kind": "user"})
    made = answer.headers["X-Request-ID"]
    assert attributed(events_after(admin, before)) == {("admin", made)}


def test_no_token_is_stored_or_answered(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    with api.client(WRITER) as writer:
        transfer = writer.post("/v1/transfers", json={
            "transfer_id": new_id(), "from": source, "to": destination, "amount": "1"})
        assert transfer.status_code == 201, transfer.text
    answers = [transfer.text, admin.get("/v1/audit/events", params={"limit": 1000}).text,
               admin.get(f"/v1/accounts/{source}/history").text,
               admin.get(f"/v1/accounts/{source}/transactions").text]
    stored = api.service.app.event_log.read(0, 1_000_000)
    for token in TOKENS:
        assert token in API_KEYS and bearer(token)  # the tokens the server knows
        assert all(token not in text for text in answers)
        assert all(token.encode() not in event.state for event in stored)


def test_history_and_transactions_say_who_asked(api, admin):
    account = open_account(admin)
    mint = {"transfer_id": new_id(), "to": account, "amount": "3"}
    assert admin.post("/v1/mint", json=mint, headers=asked("mint-1")).status_code == 201
    with api.client(WRITER) as writer:
        moved = writer.post("/v1/transfers", headers=asked("move-1"), json={
            "transfer_id": new_id(), "from": account, "to": open_account(admin), "amount": "1"})
        assert moved.status_code == 201, moved.text

    history = admin.get(f"/v1/accounts/{account}/history").json()["items"]
    listed = admin.get(f"/v1/accounts/{account}/transactions").json()["items"]
    one = admin.get(f"/v1/transfers/{mint['transfer_id']}").json()

    assert [(h["type"], h["requested_by"], h["request_id"]) for h in history] == [
        ("mint", "admin", "mint-1"), ("transfer", "writer", "move-1")]
    assert [(t["kind"], t["requested_by"], t["request_id"]) for t in listed] == [
        ("mint", "admin", "mint-1"), ("transfer", "writer", "move-1")]
    assert (one["requested_by"], one["request_id"]) == ("admin", "mint-1")


def test_the_ledgers_own_first_commit_names_genesis(api, admin):
    first = admin.get("/v1/audit/events", params={"limit": 1}).json()["items"][0]
    assert (first["requested_by"], first["request_id"]) == ("system:genesis", None)
