"""One account and the list of accounts over real HTTP, on SQLite and
PostgreSQL with Redis: what an account is, its balance summary, wallets,
token account and the chain balance the last reconciliation read; pages
and filters; the same consistency rules as every query."""

from __future__ import annotations

from solders.keypair import Keypair

from tests.interface.helpers import assert_error, fund, new_id, open_account, transfer_body


def test_an_account_answers_what_it_is_and_what_it_holds(api, admin):
    account = open_account(admin)
    fund(admin, account, "10")
    hold = admin.post("/v1/holds", json={"hold_id": new_id(), "account_id": account,
                                         "amount": "2.5"})
    assert hold.status_code == 201, hold.text
    address = str(Keypair().pubkey())
    connected = admin.post(f"/v1/accounts/{account}/wallets", json={"address": address})
    response = admin.get(f"/v1/accounts/{account}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["account_id"], body["kind"], body["status"]) == (account, "user", "active")
    assert (body["balance"], body["held"], body["available"]) == ("10", "2.5", "7.5")
    assert [w["address"] for w in body["wallets"]] == [address]
    assert body["created_at"].endswith("Z")
    assert body["position"] >= connected.json()["position"]
    assert len(body["token_account"]) >= 32 and body["chain_balance"] is None


def test_a_frozen_account_says_so(api, admin):
    account = open_account(admin)
    frozen = admin.post(f"/v1/accounts/{account}/freeze")
    assert frozen.status_code == 200, frozen.text
    assert admin.get(f"/v1/accounts/{account}").json()["status"] == "frozen"


def test_an_unknown_account_is_not_found(api, admin):
    assert_error(admin.get(f"/v1/accounts/{new_id()}"), 404, "account_not_found")


def test_accounts_page_in_the_order_they_were_opened(api, admin):
    opened = [open_account(admin) for _ in range(3)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, "kind": "user", **({"cursor": cursor} if cursor else {})}
        page = admin.get("/v1/accounts", params=params).json()
        pages += 1
        assert page["has_more"] is (page["next_cursor"] is not None)
        assert {item["kind"] for item in page["items"]} <= {"user"}
        seen += [item["account_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 2 and len(seen) == len(set(seen))
    assert [a for a in seen if a in opened] == opened


def test_accounts_filter_by_kind_and_status(api, admin):
    frozen = open_account(admin)
    admin.post(f"/v1/accounts/{frozen}/freeze")
    listed = admin.get("/v1/accounts", params={"status": "frozen", "limit": 1000}).json()
    assert frozen in [item["account_id"] for item in listed["items"]]
    assert {item["status"] for item in listed["items"]} == {"frozen"}
    treasury = admin.get("/v1/accounts", params={"kind": "treasury"}).json()["items"]
    system = admin.get("/v1/system").json()["accounts"]["treasury"]
    assert [item["account_id"] for item in treasury] == [system]
    assert_error(admin.get("/v1/accounts", params={"kind": "bank"}), 422, "invalid_request")


def test_account_queries_read_acknowledged_writes_and_say_their_position(api, admin):
    account = open_account(admin)
    moved = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account, "amount": "1"})
    position = moved.json()["position"]
    strong = admin.get(f"/v1/accounts/{account}").json()
    assert strong["balance"] == "1" and strong["position"] >= position
    eventual = admin.get(f"/v1/accounts/{account}",
                         params={"consistency": "eventual", "min_position": position}).json()
    assert eventual["balance"] == "1" and eventual["position"] >= position
    listed = admin.get("/v1/accounts", params={"min_position": position, "limit": 1}).json()
    assert listed["position"] >= position
    assert_error(admin.get("/v1/accounts", params={"min_position": 2**62}), 422,
                 "position_past_head")
    assert_error(admin.get("/v1/accounts", params={"cursor": "bogus"}), 422, "invalid_request")
    mine = admin.get(f"/v1/accounts/{account}/history", params={"limit": 1})
    assert mine.status_code == 200
    funded = open_account(admin)
    fund(admin, funded, "2")
    admin.post("/v1/transfers", json=transfer_body(funded, account, "1"))
    history_cursor = admin.get(f"/v1/accounts/{account}/history",
                               params={"limit": 1}).json()["next_cursor"]
    assert_error(admin.get("/v1/accounts", params={"cursor": history_cursor}), 422,
                 "invalid_request")
