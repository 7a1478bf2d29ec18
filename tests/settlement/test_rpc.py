"""Settlement and reconciliation through RpcChain, against the tests' JSON-RPC
server backed by LiteSVM: the real solana-py client and wire format, with RPC
errors, answers held past the client's timeout, and dropped transactions.
Whatever the endpoint does, every movement ends settled exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from application import commands as c
from application.handlers.settlement_steps import compensation_id
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from tests.chain.rpc_server import SolanaRpcServer
from tests.settlement.conftest import SettlementRig
from tests.support.stores import sqlite_store

pytestmark = pytest.mark.anyio
DEAL = UNITS_PER_DEAL


@pytest.fixture
async def rpc_rig(tmp_path: Path) -> AsyncIterator[SettlementRig]:
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path, chain_kind="rpc", rpc_timeout_s=0.5)
    try:
        await rig.settle()  # genesis and the rewards pool
        yield rig
    finally:
        await rig.close()


def server(rig: SettlementRig) -> SolanaRpcServer:
    assert rig.server is not None
    return rig.server


def retries(operation: str) -> float:
    sample = REGISTRY.get_sample_value("settlement_chain_retries_total", {"operation": operation})
    return sample or 0


def record(rig: SettlementRig, count: int) -> list:
    alice, bob = rig.open_account(), rig.open_account()
    transfer_ids = [uuid4() for _ in range(count)]
    for index, transfer_id in enumerate(transfer_ids):
        destination = alice if index % 2 else bob
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, destination, (index + 1) * DEAL))
    return transfer_ids


async def test_movements_settle_and_reconcile_through_json_rpc(rpc_rig: SettlementRig) -> None:
    alice = rpc_rig.open_account()
    moved = [
        c.TransferFunds(uuid4(), TREASURY_ID, alice, 5 * DEAL),
        c.Mint(uuid4(), alice, 2 * DEAL),
        c.Burn(uuid4(), alice, DEAL),
        c.ChargeFee(uuid4(), alice, "goal"),
    ]
    for command in moved:
        rpc_rig.execute(command)

    await rpc_rig.settle()

    await rpc_rig.assert_each_settled_once([command.command_id for command in moved])
    await rpc_rig.assert_chain_matches_ledger()
    report = await rpc_rig.reconcile()
    assert report.clean and report.checked_accounts == 3


@pytest.mark.parametrize(
    ("method", "count"),
    [
        ("sendTransaction", 3),
        ("getSignatureStatuses", 3),
        ("getLatestBlockhash", 2),
        ("getBlockHeight", 3),
        ("getAccountInfo", 2),
    ],
)
async def test_rpc_errors_are_retried_and_each_movement_settles_once(
    rpc_rig: SettlementRig, method: str, count: int
) -> None:
    transfer_ids = record(rpc_rig, 4)
    before = server(rpc_rig).calls[method]
    server(rpc_rig).fail_next(method, count=count)

    await rpc_rig.settle()

    assert server(rpc_rig).calls[method] - before > count  # the failures and then success
    await rpc_rig.assert_each_settled_once(transfer_ids)
    await rpc_rig.assert_chain_matches_ledger()


async def test_a_node_that_is_behind_is_retried(rpc_rig: SettlementRig) -> None:
    transfer_ids = record(rpc_rig, 2)
    server(rpc_rig).fail_next(
        "sendTransaction", count=2, code=-32005, message="Node is behind by 42 slots",
        data={"numSlotsBehind": 42},
    )
    retried = retries("sendTransaction")

    await rpc_rig.settle()

    assert retries("sendTransaction") == retried + 2
    await rpc_rig.assert_each_settled_once(transfer_ids)


@pytest.mark.parametrize("method", ["sendTransaction", "getSignatureStatuses"])
async def test_answers_past_the_timeout_are_retried_and_settle_once(
    rpc_rig: SettlementRig, method: str
) -> None:
    """A send whose answer never came may still have landed: resending the
    same bytes is safe, and the movement is settled once."""
    transfer_ids = record(rpc_rig, 2)
    server(rpc_rig).hold_next(method, count=1)

    await rpc_rig.settle()

    await rpc_rig.assert_each_settled_once(transfer_ids)
    await rpc_rig.assert_chain_matches_ledger()


async def test_a_dropped_transaction_is_resent_and_lands_once(rpc_rig: SettlementRig) -> None:
    transfer_ids = record(rpc_rig, 2)
    server(rpc_rig).drop_next_transactions(1)

    await rpc_rig.settle()

    await rpc_rig.assert_each_settled_once(transfer_ids)


async def test_a_dropped_transaction_whose_blockhash_expired_is_signed_again(
    rpc_rig: SettlementRig,
) -> None:
    transfer_ids = record(rpc_rig, 2)
    server(rpc_rig).drop_next_transactions(1)
    sends: list[str] = []

    def expire_after_first(signed) -> None:
        sends.append(signed.signature)
        if len(sends) == 1:
            rpc_rig.embedded.expire_blockhash()

    rpc_rig.hooks.after_send = expire_after_first
    await rpc_rig.settle()

    assert rpc_rig.transfer(transfer_ids[0]).signature != sends[0]
    await rpc_rig.assert_each_settled_once(transfer_ids)
    await rpc_rig.assert_chain_matches_ledger()


async def test_a_preflight_refusal_fails_and_compensates_one_movement(
    rpc_rig: SettlementRig,
) -> None:
    alice, bob = rpc_rig.open_account(DEAL), rpc_rig.open_account()
    await rpc_rig.settle()
    rpc_rig.embedded.freeze_token_account(rpc_rig.custody, rpc_rig.address(alice))
    refused, fine = uuid4(), uuid4()
    rpc_rig.execute(c.TransferFunds(refused, TREASURY_ID, alice, DEAL))
    rpc_rig.execute(c.TransferFunds(fine, TREASURY_ID, bob, DEAL))

    await rpc_rig.settle()

    assert rpc_rig.transfer(refused).status == "reversed"
    assert rpc_rig.transfer(compensation_id(refused)).reverses == refused
    await rpc_rig.assert_each_settled_once([fine])
    await rpc_rig.assert_chain_matches_ledger()


async def test_reconciliation_retries_rpc_errors(rpc_rig: SettlementRig) -> None:
    record(rpc_rig, 2)
    await rpc_rig.settle()
    for method in ("getSignaturesForAddress", "getTransaction", "getTokenAccountBalance"):
        server(rpc_rig).fail_next(method, count=2)

    report = await rpc_rig.reconcile()

    assert report.clean and report.checked_accounts == 4
