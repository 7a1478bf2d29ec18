"""Every command of shared/API.md through a real HTTP connection, on SQLite
and on PostgreSQL with Redis: answers, idempotent replays and refusals.
A refusal is also checked to write nothing (the log does not grow)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from solders.keypair import Keypair

from domain.system import EXTERNAL_ID, ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from tests.interface.helpers import (
    assert_error,
    fund,
    funded_account,
    log_position,
    new_id,
    open_account,
    transfer_body,
)
from tests.support.settling import settle_through


@contextmanager
def writes_nothing(api):
    before = log_position(api)
    yield
    assert log_position(api) == before


# Accounts


def test_opening_an_account_answers_201_then_200_with_the_first_answer(api, admin):
    account_id = new_id()
    first = admin.post("/v1/accounts", json={"account_id": account_id, "kind": "user"})
    again = admin.post("/v1/accounts", json={"account_id": account_id, "kind": "user"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["account_id"] == account_id and first.json()["kind"] == "user"
    assert isinstance(first.json()["position"], int)


def test_only_user_accounts_can_be_opened(api, admin):
    with writes_nothing(api):
        response = admin.post("/v1/accounts", json={"account_id": new_id(), "kind": "treasury"})
    assert_error(response, 422, "invalid_request")


def test_an_id_used_by_a_transfer_cannot_open_an_account(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = transfer_body(source, destination)
    assert admin.post("/v1/transfers", json=body).status_code == 201
    with writes_nothing(api):
        response = admin.post("/v1/accounts", json={"account_id": body["transfer_id"]})
    assert_error(response, 409, "idempotency_conflict")


def test_a_frozen_account_neither_sends_nor_receives_until_unfrozen(api, admin):
    frozen, other = funded_account(admin), funded_account(admin)
    response = admin.post(f"/v1/accounts/{frozen}/freeze")
    assert response.status_code == 200 and response.json()["frozen"] is True
    with writes_nothing(api):
        assert_error(admin.post("/v1/transfers", json=transfer_body(frozen, other)), 423,
                     "account_frozen")
        assert_error(admin.post("/v1/transfers", json=transfer_body(other, frozen)), 423,
                     "account_frozen")
    assert admin.post(f"/v1/accounts/{frozen}/unfreeze").json()["frozen"] is False
    assert admin.post("/v1/transfers", json=transfer_body(frozen, other)).status_code == 201


def test_freezing_an_unknown_account_is_account_not_found(api, admin):
    assert_error(admin.post(f"/v1/accounts/{new_id()}/freeze"), 404, "account_not_found")


# Transfers


def test_a_transfer_answers_its_amount_status_balances_and_position(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    response = admin.post("/v1/transfers", json=transfer_body(source, destination, "0.1"))
    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "0.1" and body["status"] == "pending"
    assert (body["from_balance"], body["to_balance"]) == ("9.9", "0.1")
    assert (body["from"], body["to"]) == (source, destination)
    assert body["position"] == log_position(api)


def test_a_retried_transfer_answers_200_with_the_first_answer_and_moves_nothing(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    body = transfer_body(source, destination, "3")
    first = admin.post("/v1/transfers", json=body)
    with writes_nothing(api):
        again = admin.post("/v1/transfers", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()


def test_the_same_transfer_id_with_another_body_is_an_idempotency_conflict(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    body = transfer_body(source, destination, "3")
    admin.post("/v1/transfers", json=body)
    with writes_nothing(api):
        response = admin.post("/v1/transfers", json={**body, "amount": "4"})
    error = assert_error(response, 409, "idempotency_conflict")
    assert error["message"].startswith(
        f"transfer_id {body['transfer_id']} was first used with a different 'amount'; retry")
    with writes_nothing(api):
        response = admin.post("/v1/transfers", json={**body, "to": source, "from": destination})
    assert "a different 'from' and 'to'" in assert_error(response, 409, "idempotency_conflict")[
        "message"]


@pytest.mark.parametrize(("amount", "code"), [
    ("1000.00000001", "insufficient_balance"),
])
def test_a_transfer_above_the_available_balance_is_refused(api, admin, amount, code):
    source, destination = funded_account(admin, "1000"), open_account(admin)
    with writes_nothing(api):
        assert_error(admin.post("/v1/transfers", json=transfer_body(source, destination, amount)),
                     402, code)


@pytest.mark.parametrize("amount", [
    "0", "-1", "1e3", "0.000000001", "NaN", " 1", "01", "", 1, 0.1, True, None, "2000000000",
])
def test_amounts_that_are_not_exact_positive_decimal_strings_are_invalid_amount(api, admin,
                                                                                  amount):
    source, destination = funded_account(admin), open_account(admin)
    with writes_nothing(api):
        response = admin.post("/v1/transfers", json=transfer_body(source, destination, amount))
    assert_error(response, 422, "invalid_amount")


def test_a_transfer_to_the_same_account_is_same_account(api, admin):
    source = funded_account(admin)
    assert_error(admin.post("/v1/transfers", json=transfer_body(source, source)), 422,
                 "same_account")


def test_a_transfer_naming_an_unknown_account_is_account_not_found(api, admin):
    source = funded_account(admin)
    assert_error(admin.post("/v1/transfers", json=transfer_body(source, new_id())), 404,
                 "account_not_found")


def test_a_reason_with_control_characters_is_invalid_request(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = transfer_body(source, destination, reason="line\nbreak")
    assert_error(admin.post("/v1/transfers", json=body), 422, "invalid_request")


# Batches


def test_a_non_atomic_batch_answers_each_item_and_applies_the_good_ones(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    items = [transfer_body(source, destination, "2"), transfer_body(source, destination, "9"),
             transfer_body(source, destination, "3")]
    response = admin.post("/v1/transfers/batch", json={"transfers": items, "atomic": False})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert [r["transfer_id"] for r in results] == [i["transfer_id"] for i in items]
    assert results[0]["error"] is None
    assert results[1]["error"]["code"] == "insufficient_balance"
    assert response.json()["position"] == log_position(api)
    replay = admin.post("/v1/transfers", json=items[2])
    assert replay.status_code == 200 and replay.json()["from_balance"] == "0"


def test_an_atomic_batch_with_a_refused_item_applies_nothing_and_names_the_item(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    items = [transfer_body(source, destination, "2"), transfer_body(source, destination, "9")]
    with writes_nothing(api):
        response = admin.post("/v1/transfers/batch", json={"transfers": items, "atomic": True})
    error = assert_error(response, 402, "insufficient_balance")
    assert error["item_index"] == 1


def test_an_atomic_batch_applies_all_its_items(api, admin):
    source, destination = funded_account(admin, "5"), open_account(admin)
    items = [transfer_body(source, destination, "2"), transfer_body(source, destination, "3")]
    response = admin.post("/v1/transfers/batch", json={"transfers": items, "atomic": True})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["ok", "ok"]
    again = admin.post("/v1/transfers/batch", json={"transfers": items, "atomic": True})
    assert again.status_code == 200 and again.json()["position"] == response.json()["position"]


def test_a_batch_holds_one_to_8000_transfers(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    assert_error(admin.post("/v1/transfers/batch", json={"transfers": []}), 422,
                 "invalid_request")
    items = [transfer_body(source, destination, "0.00000001") for _ in range(8001)]
    assert_error(admin.post("/v1/transfers/batch", json={"transfers": items}), 422,
                 "invalid_request")


def test_a_batch_of_8000_transfers_is_applied(api, admin):
    source, destination = funded_account(admin, "1"), open_account(admin)
    items = [transfer_body(source, destination, "0.00000001") for _ in range(8000)]
    response = admin.post("/v1/transfers/batch", json={"transfers": items, "atomic": True})
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {"ok"}
    last = admin.post("/v1/transfers", json=items[-1]).json()
    assert last["to_balance"] == "0.00008"


# Allowances and transfers by a spender


def test_a_spender_moves_within_its_allowance_which_goes_down(api, admin):
    owner, spender, shop = funded_account(admin, "10"), open_account(admin), open_account(admin)
    put = admin.put(f"/v1/allowances/{owner}/{spender}", json={"amount": "3"})
    assert put.status_code == 200 and put.json()["amount"] == "3"
    body = {**transfer_body(owner, shop, "2"), "spender": spender}
    moved = admin.post("/v1/transfers/from", json=body)
    assert moved.status_code == 201 and moved.json()["from_balance"] == "8"
    left = admin.get(f"/v1/allowances/{owner}/{spender}")
    assert left.status_code == 200
    assert left.json() == {"owner": owner, "spender": spender, "amount": "1",
                           "position": left.json()["position"]}
    assert left.json()["position"] >= moved.json()["position"]  # the state it reflects
    with writes_nothing(api):
        over = admin.post("/v1/transfers/from",
                          json={**transfer_body(owner, shop, "1.5"), "spender": spender})
    assert_error(over, 402, "allowance_exceeded")
    assert admin.put(f"/v1/allowances/{owner}/{spender}", json={"amount": "0"}).status_code == 200
    assert admin.get(f"/v1/allowances/{owner}/{spender}").json()["amount"] == "0"


def test_the_allowance_of_an_unknown_owner_is_account_not_found(api, admin):
    assert_error(admin.get(f"/v1/allowances/{new_id()}/{new_id()}"), 404, "account_not_found")


# Reversals


def test_a_reversal_undoes_a_transfer_once(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    original = transfer_body(source, destination, "4")
    admin.post("/v1/transfers", json=original)
    settle_through(api, original["transfer_id"])
    reversal = {"reversal_id": new_id(), "reason": "refund"}
    path = f"/v1/transfers/{original['transfer_id']}/reverse"
    first = admin.post(path, json=reversal)
    assert first.status_code == 201
    assert (first.json()["from"], first.json()["to"]) == (destination, source)
    assert first.json()["to_balance"] == "10" and first.json()["kind"] == "reversal"
    assert admin.post(path, json=reversal).status_code == 200
    with writes_nothing(api):
        again = admin.post(path, json={"reversal_id": new_id(), "reason": "again"})
    assert_error(again, 409, "transfer_not_reversible")


def test_reversing_needs_the_destination_to_still_hold_the_amount(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    original = transfer_body(source, destination, "4")
    admin.post("/v1/transfers", json=original)
    settle_through(api, original["transfer_id"])
    admin.post("/v1/transfers", json=transfer_body(destination, source, "1"))
    response = admin.post(f"/v1/transfers/{original['transfer_id']}/reverse",
                          json={"reversal_id": new_id()})
    assert_error(response, 402, "insufficient_balance")


def test_a_transfer_pending_settlement_is_reversed_once_it_settles(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    original = transfer_body(source, destination, "4")
    admin.post("/v1/transfers", json=original)
    path = f"/v1/transfers/{original['transfer_id']}/reverse"
    reversal = {"reversal_id": new_id(), "reason": "refund"}
    with writes_nothing(api):
        early = admin.post(path, json=reversal)
    error = assert_error(early, 409, "transfer_not_settled")
    assert "once it settles" in error["message"]
    settle_through(api, original["transfer_id"])
    assert admin.post(path, json=reversal).status_code == 201


def test_reversing_an_unknown_transfer_is_transfer_not_found(api, admin):
    response = admin.post(f"/v1/transfers/{new_id()}/reverse", json={"reversal_id": new_id()})
    assert_error(response, 404, "transfer_not_found")


# Fees, holds, rewards


def test_a_fee_is_charged_at_the_current_price_to_the_treasury(api, admin):
    account = funded_account(admin, "1")
    response = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": account,
                                            "service_type": "search"})
    assert response.status_code == 201
    assert (response.json()["fee"], response.json()["balance"]) == ("0.1", "0.9")


def test_an_unknown_service_type_is_refused(api, admin):
    account = funded_account(admin, "1")
    response = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": account,
                                            "service_type": "teleport"})
    assert_error(response, 422, "unknown_service_type")


def test_a_fee_above_the_balance_is_insufficient_balance(api, admin):
    account = open_account(admin)
    response = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": account,
                                            "service_type": "goal"})
    assert_error(response, 402, "insufficient_balance")


def test_a_hold_reserves_and_a_partial_capture_releases_the_rest(api, admin):
    account = funded_account(admin, "2")
    hold_id = new_id()
    placed = admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": account,
                                           "service_type": "goal", "expires_in_s": 60})
    assert placed.status_code == 201
    assert (placed.json()["amount"], placed.json()["available"]) == ("1", "1")
    assert admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": account,
                                         "service_type": "goal",
                                         "expires_in_s": 60}).status_code == 200
    captured = admin.post(f"/v1/holds/{hold_id}/capture", json={"amount": "0.25"})
    assert captured.status_code == 200
    assert (captured.json()["amount"], captured.json()["balance"]) == ("0.25", "1.75")
    assert_error(admin.post(f"/v1/holds/{hold_id}/void"), 409, "hold_not_pending")


def test_a_capture_without_a_body_captures_all_and_a_void_releases(api, admin):
    account = funded_account(admin, "5")
    captured_id, voided_id = new_id(), new_id()
    for hold_id in (captured_id, voided_id):
        admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": account,
                                      "amount": "2"})
    assert admin.post(f"/v1/holds/{captured_id}/capture").json()["amount"] == "2"
    voided = admin.post(f"/v1/holds/{voided_id}/void")
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert admin.post(f"/v1/holds/{voided_id}/void").status_code == 200


def test_a_void_refuses_fields_as_every_command_body_does(api, admin):
    """Void takes no fields: ``{}`` is taken, anything else is refused and
    voids nothing (a capture's ``amount`` sent to void is a mistake)."""
    account = funded_account(admin, "5")
    hold_id = new_id()
    admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": account, "amount": "2"})
    before = log_position(api)
    for body in ({"foo": 1}, {"amount": "1"}):
        error = assert_error(admin.post(f"/v1/holds/{hold_id}/void", json=body), 422,
                             "invalid_request")
        assert next(iter(body)) in error["message"]
    assert log_position(api) == before
    voided = admin.post(f"/v1/holds/{hold_id}/void", json={})
    assert voided.status_code == 200 and voided.json()["status"] == "voided"


def test_hold_refusals(api, admin):
    account = funded_account(admin, "1")
    assert_error(admin.post(f"/v1/holds/{new_id()}/capture"), 404, "hold_not_found")
    assert_error(admin.post("/v1/holds", json={"hold_id": new_id(), "account_id": account,
                                               "amount": "2"}), 402, "insufficient_balance")
    assert_error(admin.post("/v1/holds", json={"hold_id": new_id(), "account_id": account,
                                               "amount": "0.1", "expires_in_s": 0}),
                 422, "invalid_request")
    assert_error(admin.post("/v1/holds", json={"hold_id": new_id(), "account_id": account}),
                 422, "invalid_request")


def test_a_reward_is_paid_from_the_rewards_account(api, admin):
    account = open_account(admin)
    response = admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": account,
                                               "reward_type": "referral", "amount": "7"})
    assert response.status_code == 201
    assert (response.json()["amount"], response.json()["balance"]) == ("7", "7")
    assert_error(admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": account,
                                                 "reward_type": "", "amount": "1"}),
                 422, "invalid_request")


# Mint, burn, supply, pricing, wallets


def test_mint_and_burn_change_the_supply(api, admin):
    account = open_account(admin)
    supply = int(admin.get("/v1/system").json()["supply"])
    fund(admin, account, "5")
    burn = admin.post("/v1/burn", json={"transfer_id": new_id(), "from": account,
                                        "amount": "2"})
    assert burn.status_code == 201 and burn.json()["from_balance"] == "3"
    after = admin.get("/v1/system").json()["supply"]
    assert int(after) == supply + 3 or after != str(supply)
    assert_error(admin.post("/v1/burn", json={"transfer_id": new_id(), "from": account,
                                              "amount": "4"}), 402, "insufficient_balance")


def test_system_names_the_system_accounts_decimals_and_supply(api, admin):
    body = admin.get("/v1/system").json()
    assert body["accounts"] == {"treasury": str(TREASURY_ID), "rewards": str(REWARDS_ID),
                                "issuance": str(ISSUANCE_ID), "external": str(EXTERNAL_ID)}
    assert body["decimals"] == 8
    assert float(body["supply"]) >= 1_000_000_000
    assert "mint" in body


def test_a_price_rule_sets_the_fee_charged_from_then_on(api, admin):
    account = funded_account(admin, "10")
    response = admin.put("/v1/pricing/analysis", json={
        "token_cost": "0.75", "valid_from": "2000-01-01T00:00:00Z"})
    assert response.status_code == 200 and response.json()["token_cost"] == "0.75"
    fee = admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": account,
                                       "service_type": "analysis"})
    assert fee.json()["fee"] == "0.75"
    assert_error(admin.put("/v1/pricing/teleport", json={"token_cost": "1"}), 422,
                 "unknown_service_type")
    assert_error(admin.put("/v1/pricing/search", json={
        "token_cost": "1", "valid_from": "2030-01-01T00:00:00Z",
        "valid_to": "2029-01-01T00:00:00Z"}), 422, "invalid_request")
    assert_error(admin.put("/v1/pricing/search", json={
        "token_cost": "1", "valid_from": "2030-01-01T00:00:00"}), 422, "invalid_request")


def test_a_wallet_connects_once_and_disconnects(api, admin):
    account, other = open_account(admin), open_account(admin)
    address = str(Keypair().pubkey())
    connected = admin.post(f"/v1/accounts/{account}/wallets", json={"address": address})
    assert connected.status_code == 201 and connected.json()["status"] == "connected"
    assert_error(admin.post(f"/v1/accounts/{other}/wallets", json={"address": address}), 409,
                 "wallet_already_connected")
    gone = admin.delete(f"/v1/accounts/{account}/wallets/{address}")
    assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
    assert_error(admin.delete(f"/v1/accounts/{account}/wallets/{address}"), 404,
                 "wallet_not_found")


def test_an_invalid_wallet_address_is_invalid_wallet_address(api, admin):
    account = open_account(admin)
    for address in ("not-base58-0OIl", "abc", "1" * 44):
        assert_error(admin.post(f"/v1/accounts/{account}/wallets", json={"address": address}),
                     422, "invalid_wallet_address")


def test_an_expired_hold_is_released_by_the_service_within_two_seconds(api, admin):
    import time

    account = funded_account(admin, "3")
    hold_id = new_id()
    placed = admin.post("/v1/holds", json={"hold_id": hold_id, "account_id": account,
                                           "amount": "1", "expires_in_s": 1})
    assert placed.status_code == 201
    deadline = time.monotonic() + 1 + 2
    released = None
    while time.monotonic() < deadline:  # a bounded wait for the sweeper's event
        events = admin.get("/v1/audit/events", params={"aggregate_id": hold_id}).json()
        released = next((e for e in events["items"] if e["topic"].endswith("Expired")), None)
        if released:
            break
        time.sleep(0.05)
    assert released is not None, "the hold was not expired in the log within 2 s of its expiry"
    balance = admin.get(f"/v1/accounts/{account}/balance").json()
    assert (balance["held"], balance["available"]) == ("0", "3")
    assert_error(admin.post(f"/v1/holds/{hold_id}/capture"), 409, "hold_not_pending")


def test_a_frozen_account_connects_disconnects_and_voids_nothing(api, admin):
    account = funded_account(admin)
    address, hold = str(Keypair().pubkey()), new_id()
    assert admin.post(f"/v1/accounts/{account}/wallets", json={"address": address}).status_code == 201
    assert admin.post("/v1/holds", json={"hold_id": hold, "account_id": account,
                                         "amount": "1"}).status_code == 201
    assert admin.post(f"/v1/accounts/{account}/freeze").status_code == 200
    with writes_nothing(api):
        assert_error(admin.delete(f"/v1/accounts/{account}/wallets/{address}"), 423,
                     "account_frozen")
        assert_error(admin.post(f"/v1/accounts/{account}/wallets",
                                json={"address": str(Keypair().pubkey())}), 423, "account_frozen")
        assert_error(admin.post(f"/v1/holds/{hold}/void"), 423, "account_frozen")
