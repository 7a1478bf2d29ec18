"""POST /v1/withdrawals through a real HTTP connection, on SQLite and on
PostgreSQL with Redis: the account debited at once to the external account,
refused (writing nothing) unless the wallet is connected to it now, refused
like a transfer when short or frozen, a repeat answered its first answer;
listed in history and transactions, followed by GET /v1/transfers/{id},
published as ``withdrawal.requested``, and sent by the client."""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal

import pytest
from solders.keypair import Keypair

from domain.system import EXTERNAL_ID
from interface.client import LedgerClient
from interface.client import errors as client_errors
from tests.interface.helpers import assert_error, funded_account, log_position, new_id
from tests.support.http import ADMIN, READ_WRITE, WITHDRAWER, ThreadServer


@contextmanager
def writes_nothing(api):
    before = log_position(api)
    yield
    assert log_position(api) == before


def wallet_of(admin, account: str) -> str:
    address = str(Keypair().pubkey())
    response = admin.post(f"/v1/accounts/{account}/wallets", json={"address": address})
    assert response.status_code == 201, response.text
    return address


def body(account: str, address: str, amount: str = "3", **extra) -> dict:
    return {"withdrawal_id": new_id(), "account_id": account, "amount": amount,
            "address": address, **extra}


def test_a_withdrawal_debits_at_once_and_a_repeat_answers_the_first_answer(api, admin):
    account = funded_account(admin, "10")
    address = wallet_of(admin, account)
    request = body(account, address, "3.5", external_ref="payout-7")
    first = admin.post("/v1/withdrawals", json=request)
    again = admin.post("/v1/withdrawals", json=request)
    assert first.status_code == 201 and again.status_code == 200, first.text
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    answer = first.json()
    assert {key: answer[key] for key in ("withdrawal_id", "account_id", "address", "amount",
                                         "balance", "status")} == {
        "withdrawal_id": request["withdrawal_id"], "account_id": account, "address": address,
        "amount": "3.5", "balance": "6.5", "status": "pending"}
    moved = admin.get(f"/v1/transfers/{request['withdrawal_id']}",
                      params={"min_position": answer["position"]}).json()
    assert (moved["kind"], moved["from"], moved["to"], moved["status"]) == (
        "withdrawal", account, str(EXTERNAL_ID), "pending")
    assert moved["external_ref"] == "payout-7"


def test_a_write_key_may_connect_a_wallet_but_not_withdraw(api, admin):
    """Issue 18's review: a ``ledger:write`` key connected its own wallet to
    any account and withdrew the account's tokens, which no one can call
    back. Withdrawing needs ``ledger:withdraw`` (or ``admin``)."""
    account = funded_account(admin, "10")
    with api.client(READ_WRITE) as writer, api.client(WITHDRAWER) as payer:
        address = wallet_of(writer, account)
        with writes_nothing(api):
            refused = writer.post("/v1/withdrawals", json=body(account, address))
        assert_error(refused, 403, "forbidden")
        assert "'ledger:withdraw'" in refused.json()["error"]["message"]
        paid = payer.post("/v1/withdrawals", json=body(account, address))
        assert paid.status_code == 201, paid.text
        assert paid.json()["balance"] == "7"


def test_a_new_wallet_is_refused_during_its_cool_down_with_when_to_retry(make_settings):
    """The settings' cool-down reaches the handler: 409 wallet_cooling_down,
    a Retry-After and a message saying when, nothing written; the client
    raises its typed error."""
    server = ThreadServer(make_settings(withdrawal_wallet_cooldown_s=3600)).start()
    try:
        with server.client() as admin:
            account = funded_account(admin, "10")
            address = wallet_of(admin, account)
            with writes_nothing(server):
                refused = admin.post("/v1/withdrawals", json=body(account, address))
        assert_error(refused, 409, "wallet_cooling_down")
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        assert "receives nothing for 3600 s" in refused.json()["error"]["message"]
        with LedgerClient(server.url, ADMIN) as client, \
                pytest.raises(client_errors.WalletCoolingDownError):
            client.withdraw(account, 1, address)
    finally:
        server.stop()


def test_a_withdrawal_is_listed_and_published(api, admin):
    account = funded_account(admin, "10")
    request = body(account, wallet_of(admin, account))
    position = admin.post("/v1/withdrawals", json=request).json()["position"]
    read = {"min_position": position}
    history = admin.get(f"/v1/accounts/{account}/history", params=read).json()["items"]
    assert [(item["transfer_id"], item["change"], item["type"]) for item in history][-1] == (
        request["withdrawal_id"], "-3", "withdrawal")
    listed = admin.get(f"/v1/accounts/{account}/transactions",
                       params={**read, "kind": "withdrawal"}).json()["items"]
    assert [item["transfer_id"] for item in listed] == [request["withdrawal_id"]]
    events = admin.get("/v1/events", params={"types": "withdrawal.requested",
                                             "after": position - 1}).json()
    (event,) = [e for e in events["items"] if e["data"]["transfer_id"] == request["withdrawal_id"]]
    assert event["data"]["address"] == request["address"] and event["data"]["amount"] == "3"


def test_a_wallet_not_connected_to_the_account_is_refused(api, admin):
    account, other = funded_account(admin, "10"), funded_account(admin, "10")
    strangers = [str(Keypair().pubkey()), wallet_of(admin, other)]
    for address in strangers:
        with writes_nothing(api):
            response = admin.post("/v1/withdrawals", json=body(account, address))
        assert_error(response, 404, "wallet_not_found")
    with writes_nothing(api):
        response = admin.post("/v1/withdrawals", json=body(account, "not-an-address"))
    assert_error(response, 422, "invalid_wallet_address")


def test_a_disconnected_wallet_is_refused(api, admin):
    account = funded_account(admin, "10")
    address = wallet_of(admin, account)
    assert admin.delete(f"/v1/accounts/{account}/wallets/{address}").status_code == 200
    with writes_nothing(api):
        response = admin.post("/v1/withdrawals", json=body(account, address))
    assert_error(response, 404, "wallet_not_found")


def test_a_withdrawal_is_refused_like_a_transfer(api, admin):
    account = funded_account(admin, "10")
    address = wallet_of(admin, account)
    with writes_nothing(api):
        short = admin.post("/v1/withdrawals", json=body(account, address, "10.00000001"))
    assert_error(short, 402, "insufficient_balance")
    with writes_nothing(api):
        zero = admin.post("/v1/withdrawals", json=body(account, address, "0"))
    assert_error(zero, 422, "invalid_amount")
    assert admin.post(f"/v1/accounts/{account}/freeze").status_code == 200
    with writes_nothing(api):
        frozen = admin.post("/v1/withdrawals", json=body(account, address))
    assert_error(frozen, 423, "account_frozen")
    with writes_nothing(api):
        unknown = admin.post("/v1/withdrawals", json=body(new_id(), address))
    assert_error(unknown, 404, "account_not_found")


def test_a_withdrawal_cannot_be_reversed_by_an_admin(api, admin):
    account = funded_account(admin, "10")
    request = body(account, wallet_of(admin, account))
    assert admin.post("/v1/withdrawals", json=request).status_code == 201
    with writes_nothing(api):
        response = admin.post(f"/v1/transfers/{request['withdrawal_id']}/reverse",
                              json={"reversal_id": new_id(), "reason": "undo"})
    assert_error(response, 409, "transfer_not_reversible")


def test_the_client_withdraws(api, admin):
    account = funded_account(admin, "10")
    address = wallet_of(admin, account)
    with LedgerClient(api.url, ADMIN) as client:
        sent = client.withdraw(account, Decimal("2.25"), address)
        assert (str(sent.balance), sent.address, sent.status) == ("7.75", address, "pending")
        try:
            client.withdraw(account, 1, str(Keypair().pubkey()))
        except client_errors.WalletNotFoundError:
            pass
        else:
            raise AssertionError("a stranger's wallet was accepted")
