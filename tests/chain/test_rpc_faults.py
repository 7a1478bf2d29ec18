"""RpcChain under endpoint failures: RPC error answers, answers that never
come in time, and no server at all are ChainUnavailableError (retryable),
and a retry after the fault does the work once."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from application.settlement.chain_port import ChainMovement, ChainUnavailableError
from interface.chain.custody import CustodyKey
from interface.chain.rpc_adapter import RpcChain
from tests.chain.conftest import INITIAL_SUPPLY, TREASURY_ID, ChainEnv
from tests.chain.rpc_server import SolanaRpcServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rpc_env(tmp_path: Path, custody: CustodyKey) -> AsyncIterator[ChainEnv]:
    chain_env = ChainEnv("rpc", tmp_path / "chain", custody)
    await chain_env.port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    try:
        yield chain_env
    finally:
        await chain_env.close()


def server(env: ChainEnv) -> SolanaRpcServer:
    assert env.server is not None
    return env.server


@pytest.mark.parametrize(
    ("code", "message", "data"),
    [
        (-32603, "Internal error", None),
        (-32005, "Node is behind by 42 slots", {"numSlotsBehind": 42}),
        (-32005, "Node is unhealthy", None),  # malformed: solders' parser panics
    ],
)
async def test_rpc_error_answers_are_unavailable_then_recover(
    rpc_env: ChainEnv, code: int, message: str, data: object
) -> None:
    server(rpc_env).fail_next("getBlockHeight", count=2, code=code, message=message, data=data)

    for _ in range(2):
        with pytest.raises(ChainUnavailableError):
            await rpc_env.port.block_height()

    assert await rpc_env.port.block_height() == rpc_env.embedded.block_height()


@pytest.mark.parametrize(
    "method",
    [
        "getSignatureStatuses",
        "getTokenAccountBalance",
        "getSignaturesForAddress",
        "getTransaction",
        "getLatestBlockhash",
        "getAccountInfo",
    ],
)
async def test_every_read_maps_rpc_errors_to_unavailable(rpc_env: ChainEnv, method: str) -> None:
    port = rpc_env.port
    signature = (await port.signatures_for_account(TREASURY_ID))[0]
    calls = {
        "getSignatureStatuses": lambda: port.signature_statuses([signature]),
        "getTokenAccountBalance": lambda: port.token_balance(TREASURY_ID),
        "getSignaturesForAddress": lambda: port.signatures_for_account(TREASURY_ID),
        "getTransaction": lambda: port.transaction(signature),
        "getLatestBlockhash": lambda: port.sign_movements(
            [ChainMovement(uuid4(), TREASURY_ID, uuid4(), 1)]
        ),
        "getAccountInfo": lambda: port.token_balance(TREASURY_ID),
    }
    server(rpc_env).fail_next(method)

    with pytest.raises(ChainUnavailableError):
        await calls[method]()


async def test_a_failed_send_is_unavailable_and_a_resend_lands_once(rpc_env: ChainEnv) -> None:
    port, alice = rpc_env.port, uuid4()
    submission = await port.sign_movements([ChainMovement(uuid4(), TREASURY_ID, alice, 9)])
    server(rpc_env).fail_next("sendTransaction")

    with pytest.raises(ChainUnavailableError):
        await port.send(submission)
    assert await port.token_balance(alice) is None

    await port.send(submission)
    await port.send(submission)
    assert await port.token_balance(alice) == 9


async def test_an_answer_held_past_the_timeout_is_unavailable(rpc_env: ChainEnv) -> None:
    impatient = rpc_env.rpc_chain(timeout_s=0.3)
    server(rpc_env).hold_next("getLatestBlockhash")
    try:
        with pytest.raises(ChainUnavailableError):
            await impatient.sign_movements([ChainMovement(uuid4(), TREASURY_ID, uuid4(), 1)])
        assert server(rpc_env).calls["getLatestBlockhash"] >= 1
    finally:
        await impatient.close()


async def test_a_send_held_past_the_timeout_is_unavailable(rpc_env: ChainEnv) -> None:
    """The node may still process a send whose answer was lost: the caller
    sees ChainUnavailableError and resends the same bytes, which is safe."""
    impatient = rpc_env.rpc_chain(timeout_s=0.3)
    alice = uuid4()
    submission = await impatient.sign_movements([ChainMovement(uuid4(), TREASURY_ID, alice, 3)])
    server(rpc_env).hold_next("sendTransaction")
    try:
        with pytest.raises(ChainUnavailableError):
            await impatient.send(submission)
        await impatient.send(submission)
        assert await impatient.token_balance(alice) == 3
    finally:
        await impatient.close()


async def test_no_server_listening_is_unavailable(custody: CustodyKey) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening
        chain = RpcChain(url, custody, timeout_s=1.0, transport_retries_max=0)
        try:
            with pytest.raises(ChainUnavailableError):
                await chain.block_height()
        finally:
            await chain.close()


async def test_commitment_must_be_a_known_level(custody: CustodyKey) -> None:
    with pytest.raises(ValueError):
        RpcChain("http://127.0.0.1:1", custody, commitment="max")
