"""Fixtures for the chain tests: one ``ChainEnv`` per adapter, so a single
contract suite runs against LiteSvmChain in-process and RpcChain through
the test JSON-RPC server (the real AsyncClient on the real wire format)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest

from application.settlement.chain_port import ChainPort
from interface.chain.base import SeededTokenChain
from interface.chain.custody import CustodyKey, CustodyKeys, as_custody_keys, load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rpc_adapter import RpcChain
from tests.chain.rpc_server import SolanaRpcServer

TREASURY_ID = UUID("00000000-0000-4000-8000-000000000001")
INITIAL_SUPPLY = 1_000_000_000 * 10**8
RPC_TIMEOUT_S = 5.0
FEE_PAYER_LAMPORTS = 1_000 * 10**9


class ChainEnv:
    """One adapter over one embedded chain in ``data_dir``, reopenable;
    ``custody`` one key for every power, or ``CustodyKeys``."""

    def __init__(self, kind: str, data_dir: Path, custody: CustodyKey | CustodyKeys) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.custody = custody
        self.server: SolanaRpcServer | None = None
        self.port: SeededTokenChain = self._open()

    @property
    def embedded(self) -> EmbeddedSolana:
        return self._embedded

    def drop_next_transactions(self, count: int = 1) -> None:
        """Through the server when there is one, as a lost send would be."""
        if self.server is not None:
            self.server.drop_next_transactions(count)
        else:
            self.embedded.drop_next_transactions(count)

    def rpc_chain(self, *, timeout_s: float = RPC_TIMEOUT_S) -> RpcChain:
        assert self.server is not None, "only the rpc environment has a server"
        return RpcChain(self.server.url, self.custody, timeout_s=timeout_s, transport_retries_max=0)

    async def reopen(self) -> None:
        """Close everything and open a fresh chain on the same data dir, as
        a restarted service would."""
        await self.close()
        self.port = self._open()

    async def close(self) -> None:
        await self.port.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._embedded.close()

    def _open(self) -> SeededTokenChain:
        self._embedded = EmbeddedSolana(self.data_dir)
        if self.kind == "litesvm":
            return LiteSvmChain(self._embedded, self.custody)
        self._embedded.fund(as_custody_keys(self.custody).fee_payer, FEE_PAYER_LAMPORTS)  # a devnet faucet
        self.server = SolanaRpcServer(self._embedded).start()
        return self.rpc_chain()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def custody(tmp_path: Path) -> CustodyKey:
    return load_custody_keypair(None, tmp_path / "keys")


@pytest.fixture(params=["litesvm", "rpc"])
async def env(
    request: pytest.FixtureRequest, tmp_path: Path, custody: CustodyKey
) -> AsyncIterator[ChainEnv]:
    chain_env = ChainEnv(request.param, tmp_path / "chain", custody)
    try:
        yield chain_env
    finally:
        await chain_env.close()


@pytest.fixture
async def genesis_env(env: ChainEnv) -> ChainEnv:
    await env.port.ensure_genesis(TREASURY_ID, INITIAL_SUPPLY)
    return env


def _adapters_satisfy_the_port(lite: LiteSvmChain, rpc: RpcChain) -> tuple[ChainPort, ChainPort]:
    """Never called: mypy checks that both adapters implement ChainPort."""
    return lite, rpc
