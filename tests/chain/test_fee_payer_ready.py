"""A real ``deals-ledger serve`` settling through JSON-RPC whose fee payer is
drained: ``/ready`` stays 200 and shows the balance and why settlement is
paused, ``/metrics`` the balance, the log the alert; the transfer waits,
never failed; funded, it settles and the pause is gone."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx

from domain.system import TREASURY_ID
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from tests.chain.rpc_server import SolanaRpcServer
from tests.support.http import ServeProcess, wait_until

SOL = 10**9
DRAINED = 1_000


def _ready(server: ServeProcess) -> dict:
    answer = httpx.get(f"{server.url}/ready", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["settlement"]


def _fee_payer(server: ServeProcess, **expected: object) -> dict | None:
    state = _ready(server)
    fee_payer = state["fee_payer"]
    if fee_payer is None or any(fee_payer[key] != value for key, value in expected.items()):
        return None
    return state


def _idle(server: ServeProcess) -> bool:
    """Nothing queued or in flight: drained while the settler still sent the
    genesis movements, the test would catch that send refused for fees and
    polled, not the pause it is about (seen under a busy CPU)."""
    state = _ready(server)
    return state["backlog"] == 0 and state["lag_events"] == 0


def _blockhash_wait_read(server: ServeProcess) -> dict | None:
    wait = _ready(server)["blockhash_wait"]
    return wait if wait is not None and wait["block_height"] is not None else None


def _past_the_blockhash_wait(server: ServeProcess, chain: EmbeddedSolana) -> None:
    """The settler's start waits for every earlier blockhash to expire,
    which /ready shows; the chain's blocks (standing still but for landed
    transactions) are moved past it, as a cluster's would go by."""
    wait = wait_until(lambda: _blockhash_wait_read(server), 60, "the blockhash wait")
    _, last_valid = chain.latest_blockhash()
    assert wait["until_block_height"] == last_valid
    assert wait["block_height"] == chain.block_height()
    chain.advance_slots(wait["until_block_height"] - chain.block_height() + 1)
    wait_until(lambda: _ready(server)["blockhash_wait"] is None, 60, "the wait to end")


def test_ready_shows_a_drained_fee_payer_and_settlement_resumes_once_funded(tmp_path: Path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    custody = load_custody_keypair(None, data_dir)  # the one serve will use
    chain = EmbeddedSolana(tmp_path / "chain")
    chain.fund(custody.pubkey, 10 * SOL)
    rpc = SolanaRpcServer(chain).start()
    server = ServeProcess(tmp_path, {"DEALS_SOLANA_RPC_URL": rpc.url, "DEALS_ANCHORING": "off",
                                     "DEALS_FEE_PAYER_MIN_LAMPORTS": str(2 * SOL)})
    try:
        token = (data_dir / "api-key").read_text().strip()
        client = httpx.Client(base_url=server.url, timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        _past_the_blockhash_wait(server, chain)
        wait_until(lambda: _fee_payer(server, low=False, paused=False), 60, "a first reading")
        wait_until(lambda: _idle(server), 120, "the genesis movements to settle")

        chain.fund(custody.pubkey, DRAINED)
        account_id, transfer_id = uuid4(), uuid4()
        assert client.post("/v1/accounts", json={"account_id": str(account_id)}).is_success
        sent = client.post("/v1/transfers", json={
            "transfer_id": str(transfer_id), "from": str(TREASURY_ID), "to": str(account_id),
            "amount": "1"})
        assert sent.is_success, sent.text
        paused = wait_until(lambda: _fee_payer(server, paused=True), 60, "the pause")
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        transfer = client.get(f"/v1/transfers/{transfer_id}").json()

        assert paused["fee_payer"]["lamports"] == DRAINED and paused["fee_payer"]["low"] is True
        assert paused["fee_payer"]["alert_below_lamports"] == 2 * SOL
        assert paused["fee_payer"]["needed_lamports"] > DRAINED
        assert f"the fee payer {custody.address} holds {DRAINED} lamports" in (
            paused["last_error"] or "")
        assert f"deals_ledger_fee_payer_lamports {float(DRAINED)}" in metrics
        assert transfer["status"] == "pending" and transfer["signature"] is None
        log = server.stderr_path.read_text()
        assert "ALERT fee_payer_low: the fee payer's SOL is below the alert threshold" in log
        assert "ALERT fee_payer_low: settlement paused" in log

        chain.fund(custody.pubkey, 10 * SOL)
        wait_until(lambda: client.get(f"/v1/transfers/{transfer_id}").json()["status"]
                   == "settled", 60, "the transfer to settle once funded")
        resumed = wait_until(lambda: _fee_payer(server, paused=False), 60, "the pause to end")
        assert resumed["last_error"] is None
    finally:
        server.terminate()
        rpc.stop()
        chain.close()
