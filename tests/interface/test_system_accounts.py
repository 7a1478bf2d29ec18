"""The system accounts' funds: a ledger:write key cannot move them except
through the commands made for it (fees into the treasury, rewards out of
the pool), and nobody moves the issuance account except by mint and burn.
Every refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from tests.interface.helpers import (
    assert_error,
    funded_account,
    log_position,
    new_id,
    open_account,
    transfer_body,
)
from tests.support.http import WRITER

SYSTEM = {"treasury": str(TREASURY_ID), "rewards": str(REWARDS_ID),
          "issuance": str(ISSUANCE_ID)}



@pytest.fixture
def writer(api) -> Iterator[httpx.Client]:
    with api.client(WRITER) as client:
        yield client


def refused(api, response_of, status: int, code: str) -> None:
    before = log_position(api)
    assert_error(response_of(), status, code)
    assert log_position(api) == before


@pytest.mark.parametrize("system", sorted(SYSTEM))
def test_a_write_key_cannot_debit_a_system_account(api, admin, writer, system):
    account, user = SYSTEM[system], open_account(admin)
    attempts = [
        lambda: writer.post("/v1/transfers", json=transfer_body(account, user)),
        lambda: writer.post("/v1/transfers/batch", json={
            "transfers": [transfer_body(account, user)], "atomic": False}),
        lambda: writer.post("/v1/transfers/from", json={
            **transfer_body(account, user), "spender": user}),
        lambda: writer.put(f"/v1/allowances/{account}/{user}", json={"amount": "5"}),
        lambda: writer.post("/v1/holds", json={"hold_id": new_id(), "account_id": account,
                                               "amount": "1"}),
        lambda: writer.post("/v1/fees", json={"charge_id": new_id(), "account_id": account,
                                              "service_type": "search"}),
    ]
    for attempt in attempts:
        refused(api, attempt, 403, "forbidden")


def test_a_write_key_still_charges_fees_and_pays_rewards(api, admin, writer):
    user = funded_account(admin, "10")
    fee = writer.post("/v1/fees", json={"charge_id": new_id(), "account_id": user,
                                        "service_type": "search"})
    assert fee.status_code == 201, fee.text
    reward = writer.post("/v1/rewards", json={"reward_id": new_id(), "account_id": user,
                                              "reward_type": "referral", "amount": "2"})
    assert reward.status_code == 201, reward.text
    other = open_account(admin)
    assert writer.post("/v1/transfers", json=transfer_body(user, other)).status_code == 201


@pytest.mark.parametrize("system", ["treasury", "rewards"])
def test_rewards_are_paid_to_users_only(api, admin, system):
    refused(api, lambda: admin.post("/v1/rewards", json={
        "reward_id": new_id(), "account_id": SYSTEM[system], "reward_type": "r",
        "amount": "1"}), 422, "invalid_request" if system == "treasury" else "same_account")


def test_an_admin_may_move_treasury_funds(api, admin):
    user = open_account(admin)
    moved = admin.post("/v1/transfers", json=transfer_body(SYSTEM["treasury"], user, "3"))
    assert moved.status_code == 201, moved.text


def test_the_issuance_account_takes_part_only_in_mint_and_burn(api, admin):
    user = funded_account(admin, "10")
    issuance = SYSTEM["issuance"]
    for attempt in (
        lambda: admin.post("/v1/transfers", json=transfer_body(issuance, user)),
        lambda: admin.post("/v1/transfers", json=transfer_body(user, issuance)),
        lambda: admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": issuance,
                                             "service_type": "search"}),
        lambda: admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": issuance,
                                                "reward_type": "r", "amount": "1"}),
    ):
        refused(api, attempt, 422, "invalid_request")
    assert admin.post("/v1/burn", json={"transfer_id": new_id(), "from": user,
                                        "amount": "1"}).status_code == 201


def test_the_refusal_names_the_key_and_the_account(api, admin, writer):
    user = open_account(admin)
    error = assert_error(writer.post("/v1/transfers", json=transfer_body(SYSTEM["rewards"], user)),
                         403, "forbidden")
    message = error["message"]
    assert "key 'writer'" in message and SYSTEM["rewards"] in message


def test_a_write_key_captures_and_voids_the_holds_it_places(api, admin, writer):
    user = funded_account(admin, "10")
    captured, voided = new_id(), new_id()
    for hold_id in (captured, voided):
        placed = writer.post("/v1/holds", json={"hold_id": hold_id, "account_id": user,
                                                "amount": "1"})
        assert placed.status_code == 201, placed.text
    assert writer.post(f"/v1/holds/{captured}/capture", json={}).status_code == 200
    assert writer.post(f"/v1/holds/{voided}/void").status_code == 200


def test_an_admin_may_move_system_funds_by_every_generic_command(api, admin):
    user = funded_account(admin, "10")
    treasury = SYSTEM["treasury"]
    for moved in (
        admin.post("/v1/transfers/batch", json={
            "transfers": [transfer_body(treasury, user)], "atomic": True}),
        admin.put(f"/v1/allowances/{treasury}/{user}", json={"amount": "1"}),
        admin.post("/v1/transfers/from", json={**transfer_body(treasury, user), "spender": user}),
        admin.post("/v1/holds", json={"hold_id": new_id(), "account_id": treasury,
                                      "amount": "1"}),
        admin.post("/v1/fees", json={"charge_id": new_id(), "account_id": SYSTEM["rewards"],
                                     "service_type": "search"}),
    ):
        assert moved.status_code in (200, 201), moved.text
