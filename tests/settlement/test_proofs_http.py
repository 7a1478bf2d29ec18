"""Anchors and proofs in a running service: its settler anchors the log,
the routes answer the digest, a transfer's proof and a consistency proof,
and ``deals-ledger verify-proof`` confirms them from the proof file and the
chain's folder alone (the service keeps running: nothing is asked of it)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.system import TREASURY_ID
from tests.interface.conftest import sqlite_settings
from tests.interface.helpers import assert_error, funded_account, new_id
from tests.support.http import READER, ThreadServer, wait_until


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ThreadServer]:
    settings = sqlite_settings(
        tmp_path / "var", settlement_enabled=True, settlement_poll_interval_s=0.01,
        anchor_every_events=5, anchor_every_s=0.5,
    )
    server = ThreadServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def transfer(admin, to: str) -> str:
    transfer_id = new_id()
    moved = admin.post("/v1/transfers", json={
        "transfer_id": transfer_id, "from": str(TREASURY_ID), "to": to, "amount": "1",
    })
    assert moved.status_code == 201, moved.text
    return transfer_id


def anchored_past(admin, position: int) -> bool:
    anchor = admin.get("/v1/audit/digest").json()["anchor"]
    return anchor is not None and anchor["position"] >= position


def verify_offline(document: dict, tmp_path: Path, chain_dir: Path, signer: str) -> str:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [sys.executable, "-m", "interface.cli", "verify-proof", str(path),
         "--chain-dir", str(chain_dir), "--anchor-signer", signer],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_transfer_proof_from_the_api_verifies_offline(api: ThreadServer, tmp_path: Path) -> None:
    admin, reader = api.client(), api.client(READER)
    alice = funded_account(admin, "10")
    transfer_id = transfer(admin, alice)
    assert_error(reader.get(f"/v1/transfers/{new_id()}/proof"), 404, "transfer_not_found")
    head = api.service.app.event_log.head()
    wait_until(lambda: anchored_past(admin, head), 180, "an anchor covered the transfer")

    proof = reader.get(f"/v1/transfers/{transfer_id}/proof")

    assert proof.status_code == 200, proof.text
    digest = admin.get("/v1/audit/digest").json()["anchor"]
    out = verify_offline(proof.json(), tmp_path, api.service.settings.data_dir / "chain",
                         digest["signer"])
    assert "is in the ledger as anchored" in out


def test_two_anchors_are_consistent_over_the_api(api: ThreadServer, tmp_path: Path) -> None:
    admin = api.client()
    alice = funded_account(admin, "10")
    wait_until(lambda: anchored_past(admin, api.service.app.event_log.head() - 4), 180,
               "a first anchor")
    first = admin.get("/v1/audit/digest").json()["anchor"]["sequence"]
    for _ in range(3):
        transfer(admin, alice)
    head = api.service.app.event_log.head()
    wait_until(lambda: anchored_past(admin, head), 180, "a later anchor")
    last = admin.get("/v1/audit/digest").json()["anchor"]

    proof = admin.get("/v1/audit/consistency", params={"from": first, "to": last["sequence"]})

    assert proof.status_code == 200, proof.text
    verify_offline(proof.json(), tmp_path, api.service.settings.data_dir / "chain", last["signer"])
    assert_error(admin.get("/v1/audit/consistency", params={"from": 2, "to": 1}), 422,
                 "invalid_request")
    assert_error(admin.get("/v1/audit/consistency", params={"from": 1, "to": 10_000}), 409,
                 "not_anchored")
    assert_error(admin.get("/v1/audit/proof", params={"position": 10**12}), 404,
                 "event_not_found")


def test_the_audit_replay_checks_the_anchors_and_names_a_rewrite(api: ThreadServer) -> None:
    import sqlite3

    admin = api.client()
    alice = funded_account(admin, "10")
    transfer(admin, alice)
    head = api.service.app.event_log.head()
    wait_until(lambda: anchored_past(admin, head), 180, "an anchor covered the log")

    clean = admin.post("/v1/audit/replay", json={})
    assert clean.status_code == 200, clean.text
    assert clean.json()["anchors"]["checked"] and clean.json()["anchors"]["findings"] == []
    assert admin.post("/v1/audit/replay", json={"until_position": 3}).json()["anchors"] is None

    app = api.service.app
    database = app.recorder.datastore.pool.db_name
    table = app.recorder.events_table_name
    with sqlite3.connect(database) as conn:
        (state,) = conn.execute(f"SELECT state FROM {table} WHERE rowid = 2").fetchone()
        conn.execute(f"UPDATE {table} SET state = ? WHERE rowid = 2", (bytes(state) + b" ",))
    conn.close()

    found = admin.post("/v1/audit/replay", json={}).json()["anchors"]

    first = found["findings"][0]
    assert first["kind"] == "contradicted" and first["sequence"] == 1
    assert first["after_position"] < 2 <= first["at_or_before_position"]


def test_a_transfer_proof_carries_who_asked_and_still_verifies(
    api: ThreadServer, tmp_path: Path,
) -> None:
    """Who asked is stored in the event, so the canonical bytes an anchor
    covers carry it: a proof attributes the movement, verifiable offline."""
    admin = api.client()
    alice = funded_account(admin, "10")
    transfer_id = new_id()
    moved = admin.post("/v1/transfers", headers={"X-Request-ID": "proof-trace-1"}, json={
        "transfer_id": transfer_id, "from": str(TREASURY_ID), "to": alice, "amount": "1"})
    assert moved.status_code == 201, moved.text
    head = api.service.app.event_log.head()
    wait_until(lambda: anchored_past(admin, head), 180, "an anchor covered the transfer")

    proof = admin.get(f"/v1/transfers/{transfer_id}/proof").json()

    state = json.loads(proof["event"]["state"])
    assert (state["requested_by"], state["request_id"]) == ("admin", "proof-trace-1")
    canonical = base64.b64decode(proof["event"]["canonical_bytes"])
    assert b'"requested_by":"admin"' in canonical.replace(b" ", b"")
    digest = admin.get("/v1/audit/digest").json()["anchor"]
    verify_offline(proof, tmp_path, api.service.settings.data_dir / "chain", digest["signer"])
