"""The service settling through a Solana JSON-RPC endpoint that errors,
answers too late and drops sent transactions while the ledger is under load
(the tests' own server over LiteSVM, so the real client and wire format are
in play). Commands never wait on the chain; the settler in the API process
rides out every fault by itself, with no restart, and in the end each
movement is settled once and reconciliation is clean. Single faults against
the settlement process alone are tests/settlement/test_rpc.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from tests.chain.conftest import FEE_PAYER_LAMPORTS
from tests.chain.rpc_server import CLUSTER_BLOCKS_PER_HEIGHT_READ, SolanaRpcServer
from tests.reliability.guarantees import assert_guarantees
from tests.reliability.load import load_against
from tests.support.http import ThreadServer, wait_until

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

ACKNOWLEDGED_BETWEEN = 60
RPC_TIMEOUT_S = 0.5
FAULTS = {"sendTransaction": 4, "getSignatureStatuses": 4, "getLatestBlockhash": 2}


@pytest.fixture
def rpc_endpoint(tmp_path: Path, pg_service) -> Iterator[SolanaRpcServer]:
    """A JSON-RPC node; the service's custody key (in its data dir) is funded
    on it, as a faucet would on devnet."""
    chain = EmbeddedSolana(tmp_path / "rpc-chain")
    chain.fund(load_custody_keypair(None, pg_service.data_dir).pubkey, FEE_PAYER_LAMPORTS)
    server = SolanaRpcServer(chain, blocks_per_height_read=CLUSTER_BLOCKS_PER_HEIGHT_READ).start()
    try:
        yield server
    finally:
        server.stop()
        chain.close()


def test_an_erroring_slow_and_dropping_endpoint_settles_everything_once(
    pg_service, rpc_endpoint: SolanaRpcServer
):
    settings = pg_service.replace(solana_rpc_url=rpc_endpoint.url, solana_timeout_s=RPC_TIMEOUT_S)
    server = ThreadServer(settings).start()
    try:
        with server.client() as admin:
            with load_against(server.url, admin) as run:
                load, accounts = run.load, run.accounts
                load.wait_for_acknowledged(ACKNOWLEDGED_BETWEEN)
                calls_before = dict(rpc_endpoint.calls)
                for method, count in FAULTS.items():
                    rpc_endpoint.fail_next(method, count=count)
                rpc_endpoint.hold_next("sendTransaction")  # answered past the client's timeout
                rpc_endpoint.hold_next("getSignatureStatuses")
                rpc_endpoint.drop_next_transactions(3)
                load.wait_for_acknowledged(2 * ACKNOWLEDGED_BETWEEN)
                wait_until(lambda: all(rpc_endpoint.calls[m] - calls_before.get(m, 0) > n + 1
                                       for m, n in FAULTS.items()),
                           60, "the settler to meet every injected fault and carry on")
                load.wait_for_acknowledged(3 * ACKNOWLEDGED_BETWEEN)
            book = run.book
            assert not book.surprises, ("the chain is never in a command's path", book.surprises)
            assert_guarantees(settings.eventsourcing_env(), book, accounts, admin)
    finally:
        server.stop()
