"""An unreachable Solana endpoint is named (scheme, host, port; never the
path, query or user part, where providers put API keys) with the cause, in
the error, the settler's log and /ready's body, which stays 200: the API
works without the chain."""

from __future__ import annotations

import asyncio
import re
import socket

import httpx
import pytest

from application.settlement.chain_port import ChainUnavailableError
from interface.chain.custody import load_custody_keypair
from interface.chain.rpc_adapter import RpcChain, endpoint_for_logs
from tests.support.http import ServeProcess, wait_until

SECRET = "k3y-in-the-url"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("url, shown", [
    ("https://user:pw@rpc.example:8899/v1/KEY?api-key=KEY", "https://rpc.example:8899"),
    ("http://[::1]:9/x", "http://[::1]:9"),
    ("not a url", "the configured DEALS_SOLANA_RPC_URL"),
])
def test_the_endpoint_is_named_without_its_secrets(url, shown):
    assert endpoint_for_logs(url) == shown


def test_a_refused_connection_names_endpoint_and_cause(tmp_path):
    tmp_path.chmod(0o700)
    custody = load_custody_keypair(None, tmp_path)
    port = closed_port()

    async def ask() -> str:
        chain = RpcChain(f"http://127.0.0.1:{port}/?api-key={SECRET}", custody, timeout_s=5)
        try:
            with pytest.raises(ChainUnavailableError) as caught:
                await chain.block_height()
            return str(caught.value)
        finally:
            await chain.close()

    message = asyncio.run(ask())
    assert message.startswith(f"getBlockHeight to http://127.0.0.1:{port} failed: ConnectError")
    assert SECRET not in message


def _settlement(server: ServeProcess) -> dict | None:
    answer = httpx.get(f"{server.url}/ready", timeout=10)
    assert answer.status_code == 200, answer.text
    state = answer.json()["settlement"]
    return state if state["last_error"] else None


def _caught_up(server: ServeProcess) -> dict | None:
    state = _settlement(server)
    return state if state is not None and state["lag_events"] == 0 else None


def log_of(server: ServeProcess) -> str:
    return server.stderr_path.read_text()


def test_ready_reports_a_settler_that_cannot_reach_its_chain(tmp_path):
    port = closed_port()
    server = ServeProcess(tmp_path, {"DEALS_SOLANA_RPC_URL": f"http://127.0.0.1:{port}/{SECRET}",
                                     "DEALS_SOLANA_TIMEOUT_S": "2"})
    try:
        state = wait_until(lambda: _settlement(server), 60, "/ready to report the failure")
        # the paused settler reads the log between attempts: what waits is counted
        state = wait_until(lambda: _caught_up(server), 60, "the paused settler to read the log")
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.terminate()
    assert state["runs_here"] is True and state["active_here"] is False
    assert state["settler_active"] is False  # holding the lease only to try again is not active
    assert state["backlog"] >= 1  # the initial supply's mint waits for the chain
    assert "settlement_settler_active 0.0" in metrics
    waits = [float(wait) for wait in re.findall(r"next attempt in ([\d.]+)s", log_of(server))]
    assert waits and waits == [0.1, 0.2, 0.4, 0.8, 1.6][:len(waits)], waits  # doubling, as waited
    assert re.search(r"settlement paused \(attempt 1 failed after \d+\.\ds\)", log_of(server))
    assert f"http://127.0.0.1:{port} failed: ConnectError" in state["last_error"]
    log = log_of(server)
    assert f"http://127.0.0.1:{port} failed: ConnectError" in log
    assert SECRET not in log + state["last_error"]
