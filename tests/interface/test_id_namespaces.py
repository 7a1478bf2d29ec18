"""No client-chosen id occupies an id the ledger derives for itself.

A wallet's id is derived from its address, a compensation's from the failed
transfer, an adjustment's from its finding. Before ledger ids were
reserved (``domain.ids``), a write key could open an account under an
address's wallet id and the address answered 409 forever. Now the ledger
derives version 8 ids, which no client may choose, and passes over whatever
a client put at the id it used to derive (the legacy uuid5).
"""

from __future__ import annotations

from uuid import UUID, uuid4

from solders.keypair import Keypair

from application.handlers.settlement_steps import compensation_id
from domain.system import GENESIS_MINT_ID, TREASURY_ID
from domain.wallet import legacy_wallet_id, wallet_id
from tests.interface.helpers import (
    assert_error,
    funded_account,
    log_position,
    new_id,
    open_account,
    transfer_body,
)
from tests.support.settling import settle_through


def _address() -> str:
    return str(Keypair().pubkey())


def test_an_account_at_an_addresss_old_wallet_id_does_not_keep_it_from_connecting(api, admin):
    address = _address()
    squatter = str(legacy_wallet_id(address))  # the wallet id every earlier version derived
    opened = admin.post("/v1/accounts", json={"account_id": squatter, "kind": "user"})
    assert opened.status_code == 201, opened.text
    owner = open_account(admin)
    connected = admin.post(f"/v1/accounts/{owner}/wallets", json={"address": address})
    assert connected.status_code == 201, connected.text
    assert_error(admin.post(f"/v1/accounts/{squatter}/wallets", json={"address": address}),
                 409, "wallet_already_connected")
    gone = admin.delete(f"/v1/accounts/{owner}/wallets/{address}")
    assert gone.status_code == 200, gone.text


def test_no_client_may_choose_an_id_the_ledger_derives(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    derived = [wallet_id(_address()), compensation_id(uuid4())]
    well_known = [TREASURY_ID, GENESIS_MINT_ID]
    before = log_position(api)
    for reserved in map(str, derived + well_known):
        attempts = {
            "account_id": admin.post("/v1/accounts", json={"account_id": reserved}),
            "transfer_id": admin.post("/v1/transfers", json={
                **transfer_body(source, destination), "transfer_id": reserved}),
            "batch item": admin.post("/v1/transfers/batch", json={"transfers": [
                transfer_body(source, destination),
                {**transfer_body(source, destination), "transfer_id": reserved}]}),
            "charge_id": admin.post("/v1/fees", json={
                "charge_id": reserved, "account_id": source, "service_type": "search"}),
            "hold_id": admin.post("/v1/holds", json={
                "hold_id": reserved, "account_id": source, "amount": "1"}),
            "reward_id": admin.post("/v1/rewards", json={
                "reward_id": reserved, "account_id": destination, "reward_type": "referral",
                "amount": "1"}),
            "mint": admin.post("/v1/mint", json={
                "transfer_id": reserved, "to": destination, "amount": "1"}),
        }
        for what, answer in attempts.items():
            error = assert_error(answer, 422, "invalid_request")
            assert reserved in error["message"], (what, error)
    assert log_position(api) == before


def test_a_reversal_may_not_take_a_compensations_id(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = transfer_body(source, destination)
    assert admin.post("/v1/transfers", json=body).status_code == 201
    settle_through(api, body["transfer_id"])
    reserved = str(compensation_id(UUID(body["transfer_id"])))
    answer = admin.post(f"/v1/transfers/{body['transfer_id']}/reverse",
                        json={"reversal_id": reserved, "reason": "squat"})
    assert_error(answer, 422, "invalid_request")
    allowed = admin.post(f"/v1/transfers/{body['transfer_id']}/reverse",
                         json={"reversal_id": new_id(), "reason": "undo"})
    assert allowed.status_code == 201, allowed.text
