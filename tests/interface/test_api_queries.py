"""The query endpoints over real HTTP against the real read side, on SQLite
and PostgreSQL with Redis: read-your-writes with min_position, pages,
point-in-time balances, transfer status, wallets, pricing and the audit."""

from __future__ import annotations

from solders.keypair import Keypair

from tests.interface.helpers import (
    assert_error,
    funded_account,
    new_id,
    open_account,
    transfer_body,
)


def test_a_client_reads_its_own_writes_with_min_position(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    moved = admin.post("/v1/transfers", json=transfer_body(source, destination, "2.5")).json()
    response = admin.get(f"/v1/accounts/{source}/balance",
                         params={"min_position": moved["position"]})
    assert response.status_code == 200
    body = response.json()
    assert (body["balance"], body["held"], body["available"]) == ("7.5", "0", "7.5")
    assert body["account_id"] == source and 0 < body["position"] <= moved["position"]


def test_history_pages_oldest_first_with_a_cursor(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    last = None
    for amount in ("1", "2", "3"):
        last = admin.post("/v1/transfers", json=transfer_body(source, destination, amount))
    position = last.json()["position"]
    first = admin.get(f"/v1/accounts/{destination}/history",
                      params={"limit": 2, "min_position": position}).json()
    assert [item["change"] for item in first["items"]] == ["1", "2"]
    assert first["next_cursor"]
    rest = admin.get(f"/v1/accounts/{destination}/history",
                     params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["balance_after"] for item in rest["items"]] == ["6"]
    transactions = admin.get(f"/v1/accounts/{destination}/transactions",
                             params={"min_position": position}).json()
    assert [item["amount"] for item in transactions["items"]] == ["1", "2", "3"]


def test_a_balance_at_an_earlier_position(api, admin):
    account = funded_account(admin, "10")
    before = admin.post("/v1/transfers", json=transfer_body(account, open_account(admin), "4"))
    position = before.json()["position"]
    admin.post("/v1/transfers", json=transfer_body(account, open_account(admin), "1"))
    at = admin.get(f"/v1/accounts/{account}/balance", params={"at": str(position)})
    assert at.status_code == 200 and at.json()["balance"] == "6"
    assert_error(admin.get(f"/v1/accounts/{account}/balance", params={"at": "yesterday"}),
                 422, "invalid_request")


def test_a_balance_at_a_time_is_the_state_after_the_whole_commit_then(api, admin):
    """A time names the last whole commit at or before it: a transfer's
    own time answers at the transfer's position for both sides (never the
    debit without its credit), and that position, asked again, agrees."""
    source, destination = funded_account(admin, "100"), open_account(admin)
    moved = admin.post("/v1/transfers", json=transfer_body(source, destination, "30")).json()
    shown = admin.get(f"/v1/transfers/{moved['transfer_id']}",
                      params={"min_position": moved["position"]}).json()
    for account, expected in ((source, "70"), (destination, "30")):
        at_time = admin.get(f"/v1/accounts/{account}/balance",
                            params={"at": shown["created_at"]}).json()
        assert (at_time["balance"], at_time["position"]) == (expected, moved["position"])
        again = admin.get(f"/v1/accounts/{account}/balance",
                          params={"at": str(at_time["position"])}).json()
        assert again == at_time
    replay = admin.post("/v1/audit/replay", json={"until": shown["created_at"]}).json()
    assert replay["position"] == moved["position"] and replay["supply_ok"] is True


def test_a_transfer_shows_its_settlement_status(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    body = transfer_body(source, destination, "1")
    position = admin.post("/v1/transfers", json=body).json()["position"]
    response = admin.get(f"/v1/transfers/{body['transfer_id']}",
                         params={"min_position": position})
    assert response.status_code == 200
    view = response.json()
    assert (view["status"], view["amount"], view["from"], view["to"]) == (
        "pending", "1", source, destination)
    assert_error(admin.get(f"/v1/transfers/{new_id()}"), 404, "transfer_not_found")


def test_wallets_of_an_account(api, admin):
    account = open_account(admin)
    address = str(Keypair().pubkey())
    position = admin.post(f"/v1/accounts/{account}/wallets",
                          json={"address": address}).json()["position"]
    wallets = admin.get(f"/v1/accounts/{account}/wallets", params={"min_position": position})
    assert wallets.status_code == 200
    assert [(w["address"], w["status"]) for w in wallets.json()["wallets"]] == [
        (address, "connected")]


def test_pricing_lists_every_service_type(api, admin):
    services = admin.get("/v1/pricing").json()["services"]
    assert {s["service_type"] for s in services} == {"search", "goal", "analysis",
                                                     "notification"}


def test_the_audit_replays_the_log_against_the_read_models(api, admin):
    moved = admin.post("/v1/transfers", json=transfer_body(funded_account(admin, "3"),
                                                           open_account(admin), "1"))
    admin.get("/v1/system", params={"min_position": moved.json()["position"]})
    replay = admin.post("/v1/audit/replay", json={})
    assert replay.status_code == 200, replay.text
    assert replay.json()["supply_ok"] is True
    events = admin.get("/v1/audit/events", params={"after_position": 0, "limit": 5}).json()
    positions = [e["position"] for e in events["items"]]
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) >= 5  # genesis, one commit, whole (it has more than 5 events)
    assert events["next_after_position"] == positions[-1]
    assert events["after_position"] == 0 and events["position"] >= moved.json()["position"]


def test_ready_reports_the_store_and_the_read_models(api):
    import httpx

    body = httpx.get(f"{api.url}/ready").json()
    assert body["status"] == "ready" and body["read_model_position"] is not None


def test_a_cursor_is_refused_by_any_listing_but_its_own(api, admin):
    """A history cursor once restarted /transactions at its first row."""
    account, other = funded_account(admin, "10"), funded_account(admin, "10")
    moved = None
    for _ in range(3):
        moved = admin.post("/v1/transfers", json=transfer_body(account, other, "1"))
    position = moved.json()["position"]
    pages = {
        (owner, listing): admin.get(f"/v1/accounts/{owner}/{listing}",
                                    params={"limit": 1, "min_position": position}).json()
        for owner in (account, other) for listing in ("history", "transactions")
    }
    for (owner, listing), page in pages.items():
        cursor = page["next_cursor"]
        assert cursor
        again = admin.get(f"/v1/accounts/{owner}/{listing}", params={"cursor": cursor})
        assert again.status_code == 200, again.text
        for (target, target_listing) in pages:
            if (target, target_listing) == (owner, listing):
                continue
            refused = admin.get(f"/v1/accounts/{target}/{target_listing}",
                                params={"cursor": cursor})
            message = assert_error(refused, 422, "invalid_request")["message"]
            assert message.startswith("cursor: belongs to"), message
