"""The cost of mirroring as the benchmarks report it (issue 18): what the
fee payer paid for the settlement transactions on the embedded chain, per
settled movement, read back from the chain's own index."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

from application.settlement.chain_port import ChainMovement
from benchmarks.chain_cost import settlement_cost
from benchmarks.deployed import Deployed
from benchmarks.settlement_throughput import priority_fees
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.wiring.settler import EMBEDDED_CHAIN_DIR

TREASURY = UUID("00000000-0000-4000-8000-000000000001")


async def settle_some(data_dir: Path, price: int) -> list[int]:
    """Genesis, one transaction creating two accounts (3 movements), one
    between them (2 movements); the lamports each settlement cost the fee payer."""
    chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
    custody = load_custody_keypair(None, data_dir)
    port = LiteSvmChain(chain, custody, fees=priority_fees(price))
    alice, bob = uuid4(), uuid4()
    batches = [[ChainMovement(uuid4(), TREASURY, alice, 50), ChainMovement(uuid4(), TREASURY, bob, 50),
                ChainMovement(uuid4(), alice, bob, 5)],
               [ChainMovement(uuid4(), bob, alice, 1), ChainMovement(uuid4(), alice, bob, 1)]]
    try:
        await port.ensure_genesis(TREASURY, 10**12)
        paid = []
        for movements in batches:
            submission = await port.sign_movements(movements, whole=True)
            before = chain.get_account(custody.pubkey)
            await port.send(submission)
            after = chain.get_account(custody.pubkey)
            assert before is not None and after is not None
            paid.append(before.lamports - after.lamports)
        return paid
    finally:
        await port.close()


def test_the_fee_payer_spend_is_summed_per_settled_movement(tmp_path: Path) -> None:
    paid = asyncio.run(settle_some(tmp_path, price=200_000))
    chain = EmbeddedSolana(tmp_path / EMBEDDED_CHAIN_DIR)
    try:
        cost = settlement_cost(chain, load_custody_keypair(None, tmp_path).pubkey)
        rent = chain.rent_lamports().token_account
    finally:
        chain.close()
    assert (cost.transactions, cost.movements) == (2, 5)  # genesis is no movement
    assert cost.spent_lamports == sum(paid)  # what the balance lost, read back
    assert cost.spent_lamports == cost.fee_lamports + 2 * rent
    assert paid[1] > 5000  # one signature's base fee, plus the priority price
    assert cost.fees_per_thousand == 1000 * cost.fee_lamports / 5


def test_the_deployed_bench_reads_the_cost_from_a_stopped_service_data_dir(tmp_path: Path) -> None:
    asyncio.run(settle_some(tmp_path, price=0))
    described = Deployed._chain_cost(tmp_path)
    assert "5 movements in 2 transactions" in described
    assert "2,000,000 lamports in fees per 1,000 settled movements" in described  # 2 x 5,000 / 5
