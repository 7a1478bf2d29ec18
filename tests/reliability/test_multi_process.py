"""The ledger as it scales out: two API server processes (projection and
settlement turned off in them), one ``deals-ledger project`` worker and one
``deals-ledger settle`` worker, all on one PostgreSQL schema, one Redis and
one Solana JSON-RPC endpoint, under a load of transfers and fees into the
one hot treasury sent to both API processes at once. The writers of the two
processes conflict on the treasury and settle it by optimistic concurrency;
nothing is lost or doubled, the worker's read models pass the audit, every
movement is settled once and reconciliation is clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from tests.chain.conftest import FEE_PAYER_LAMPORTS
from tests.chain.rpc_server import CLUSTER_BLOCKS_PER_HEIGHT_READ, SolanaRpcServer
from tests.interface.helpers import funded_account
from tests.reliability.conftest import serve_env
from tests.reliability.guarantees import assert_guarantees
from tests.reliability.load import Load
from tests.reliability.processes import WorkerProcess
from tests.support.http import ADMIN, ServeProcess

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

API_PROCESSES = 2
ACKNOWLEDGED = 400


@pytest.fixture
def chain_endpoint(tmp_path: Path) -> Iterator[tuple[SolanaRpcServer, Path]]:
    """One JSON-RPC node every process reaches, and the custody key file
    they share (funded on the node)."""
    keys = tmp_path / "keys"
    custody = load_custody_keypair(None, keys)
    chain = EmbeddedSolana(tmp_path / "rpc-chain")
    chain.fund(custody.pubkey, FEE_PAYER_LAMPORTS)
    server = SolanaRpcServer(chain, blocks_per_height_read=CLUSTER_BLOCKS_PER_HEIGHT_READ).start()
    try:
        yield server, next(keys.glob("*.json"))
    finally:
        server.stop()
        chain.close()


def test_two_api_processes_and_separate_workers_keep_every_promise(
    pg_service, chain_endpoint, tmp_path: Path
):
    rpc, key_file = chain_endpoint
    env = serve_env(pg_service) | {
        "DEALS_SOLANA_RPC_URL": rpc.url, "DEALS_CUSTODY_KEYPAIR": str(key_file),
    }
    api_env = env | {"DEALS_PROJECTIONS": "off", "DEALS_SETTLEMENT": "off"}
    processes: list = []
    try:
        processes += [ServeProcess(tmp_path / f"api-{n}", api_env) for n in range(API_PROCESSES)]
        processes.append(WorkerProcess(tmp_path / "project", env, "project"))
        processes.append(WorkerProcess(tmp_path / "settle", env | {"DEALS_PROJECTIONS": "off"},
                                       "settle"))
        servers = processes[:API_PROCESSES]
        with servers[0].client(ADMIN) as admin:
            accounts = [funded_account(admin, "1000") for _ in range(4)]
            load = Load([s.url for s in servers], accounts, clients=6).start()
            try:
                load.wait_for_acknowledged(ACKNOWLEDGED, stall_s_max=120)
            finally:
                book = load.stop()
            assert not book.surprises, book.surprises
            assert_guarantees(pg_service.eventsourcing_env(), book, accounts, admin)
        exits = [p.terminate() for p in processes]
        assert exits == [0] * len(processes)
    finally:
        for process in processes:
            process.kill()
