"""Reconciliation over HTTP (admin): run one, read the latest, resolve a
finding; settlement running inside the API process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from solders.pubkey import Pubkey

from domain.system import TREASURY_ID
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.wiring.settler import custody_key
from tests.interface.conftest import sqlite_settings
from tests.interface.helpers import assert_error, funded_account, new_id
from tests.support.http import WRITER, ThreadServer, wait_until


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ThreadServer]:
    settings = sqlite_settings(
        tmp_path / "var", settlement_enabled=True, settlement_poll_interval_s=0.01,
        reconcile_interval_s=0,
    )
    server = ThreadServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def settled(api: ThreadServer, transfer_id: str) -> bool:
    return api.service.app.transfer(UUID(transfer_id)).status == "settled"


def test_reconciliations_over_http(api: ThreadServer) -> None:
    admin, writer = api.client(), api.client(WRITER)
    assert_error(admin.get("/v1/reconciliations/latest"), 404, "reconciliation_not_found")
    assert_error(writer.post("/v1/reconciliations"), 403, "forbidden")
    alice = funded_account(admin, "25")
    transfer_id = new_id()
    moved = admin.post("/v1/transfers", json={
        "transfer_id": transfer_id, "from": str(TREASURY_ID), "to": alice, "amount": "5",
    })
    assert moved.status_code == 201, moved.text
    wait_until(lambda: settled(api, transfer_id), 30, "the transfer settled")

    clean = admin.post("/v1/reconciliations")

    assert clean.status_code == 201, clean.text
    report = clean.json()
    assert {"checked_accounts", "mismatches", "unmatched_signatures", "finished_at"} <= set(report)
    assert report["mismatches"] == [] and report["unmatched_signatures"] == []
    assert report["checked_accounts"] == 3
    assert report["position"] > moved.json()["position"]  # the run recorded its start
    latest = admin.get("/v1/reconciliations/latest").json()
    assert latest.pop("position") >= report.pop("position") and latest == report

    chain = api.service.settlement.chain  # the settler's embedded chain, in this process
    assert isinstance(chain, LiteSvmChain)
    behind = chain.embedded.transfer_directly(
        custody_key(api.service.settings),
        Pubkey.from_string(chain.token_account_address(TREASURY_ID)),
        Pubkey.from_string(chain.token_account_address(UUID(alice))), 1,
    )
    assert behind.landed is not None

    found = admin.post("/v1/reconciliations", json={"full": False}).json()

    assert [item["signature"] for item in found["unmatched_signatures"]] == [behind.signature]
    by_account = {item["account_id"]: item for item in found["mismatches"]}
    assert (by_account[alice]["expected"], by_account[alice]["actual"]) == ("30", "30.00000001")
    finding = by_account[alice]["finding_id"]
    adjusted = admin.post(f"/v1/reconciliations/findings/{finding}/adjust",
                          json={"reason": "token moved by hand"})
    again = admin.post(f"/v1/reconciliations/findings/{finding}/adjust",
                       json={"reason": "token moved by hand"})
    assert (adjusted.status_code, again.status_code) == (201, 200), adjusted.text
    assert adjusted.json()["kind"] == "mint" and adjusted.json()["amount"] == "0.00000001"
    unknown = found["unmatched_signatures"][0]["finding_id"]
    assert_error(admin.post(f"/v1/reconciliations/findings/{unknown}/adjust"), 409,
                 "finding_not_adjustable")
    assert_error(admin.post(f"/v1/reconciliations/findings/{new_id()}/adjust"), 404,
                 "finding_not_found")
    assert_error(admin.post("/v1/reconciliations", json={"full": "yes"}), 400, "bad_request")
    assert_error(admin.post("/v1/reconciliations", json={"fast": True}), 422, "invalid_request")


def test_an_account_shows_its_token_account_and_the_last_reconciled_chain_balance(
    api: ThreadServer,
) -> None:
    admin = api.client()
    alice = funded_account(admin, "4")
    before = admin.get(f"/v1/accounts/{alice}").json()
    chain = api.service.settlement.chain
    assert chain is not None
    assert before["token_account"] == chain.token_account_address(UUID(alice))
    assert (before["chain_balance"], before["chain_balance_read_at"]) == (None, None)
    minted = admin.get(f"/v1/accounts/{alice}/transactions").json()["items"][0]["transfer_id"]
    wait_until(lambda: settled(api, minted), 30, "the mint settled")

    report = admin.post("/v1/reconciliations")
    assert report.status_code == 201
    assert report.json()["started_at"].endswith("Z") and report.json()["finished_at"].endswith("Z")

    after = admin.get(f"/v1/accounts/{alice}").json()
    assert after["chain_balance"] == "4" and after["chain_balance_read_at"].endswith("Z")
