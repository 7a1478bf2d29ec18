"""Settled movements per second on the embedded LiteSVM chain, one movement
per Solana transaction against as many as fit (batching), measured in the
same run on the same store, and what they cost in lamports
(``benchmarks/chain_cost.py``).

    .venv/bin/python -m benchmarks.settlement_throughput --movements 2000 [--price 1000]

Each scenario gets a fresh ledger (SQLite in a temporary folder, or a fresh
PostgreSQL schema with --database-url) and a fresh embedded chain; the
movements are recorded first, then the settlement process settles the
backlog and the clock runs from its first step to an empty queue. Every
step is the production path: sign, write-ahead record through the command
writer, fold, send, confirm, record the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from application import commands as c
from application.authority import INTERNAL
from application.settlement.process import SettlementConfig, SettlementProcess
from application.write.aggregate_cache import AggregateCache
from application.write.event_store import LedgerApplication
from application.write.processor import CommandProcessor
from application.write.writer import CommandWriter
from benchmarks.chain_cost import ChainCost, settlement_cost
from benchmarks.write_path import bench_store
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from interface.chain.compute_budget import (
    COMPUTE_UNIT_LIMIT_MAX,
    PriorityFees,
    priority_fee_lamports,
)
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain


class BenchLedger:
    """The write side as the service builds it (application, processor,
    group-commit writer), after genesis; the benchmark's own, so nothing
    here depends on the tests' helpers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = LedgerApplication(env)
        self.writer = CommandWriter(CommandProcessor(self.app, cache=AggregateCache())).start()
        self.writer.execute(c.Genesis(), authority=INTERNAL)

    def close(self) -> None:
        self.writer.stop()
        self.app.close()


def record_movements(ledger: BenchLedger, movements: int, accounts: int) -> None:
    """Fund the accounts from the treasury, then random transfers between
    them (each small enough that no account runs dry)."""
    opened = [uuid.uuid4() for _ in range(accounts)]
    futures = [ledger.writer.send(c.OpenAccount(account), authority=INTERNAL) for account in opened]
    futures += [
        ledger.writer.send(c.TransferFunds(uuid.uuid4(), TREASURY_ID, a, 10_000 * UNITS_PER_DEAL),
                             authority=INTERNAL)
        for a in opened
    ]
    rng = random.Random(7)
    for _ in range(movements - accounts):
        source, destination = rng.sample(opened, 2)
        moved = c.TransferFunds(uuid.uuid4(), source, destination, 1)
        futures.append(ledger.writer.send(moved, authority=INTERNAL))
    for future in futures:
        future.result(60)


def priority_fees(price: int) -> PriorityFees:
    """The price with the smallest cap that admits it."""
    return PriorityFees(price, priority_fee_lamports(COMPUTE_UNIT_LIMIT_MAX, price))


async def settle(ledger: BenchLedger, folder: Path, batch: int | None,
                 price: int = 0) -> tuple[int, float, int, ChainCost]:
    from application.settlement.fold import SettlementFold
    from application.settlement.store import open_settlement_store

    custody = load_custody_keypair(None, folder / "keys")
    embedded = EmbeddedSolana(folder / "chain")
    chain = LiteSvmChain(embedded, custody, fees=priority_fees(price))
    store = open_settlement_store(ledger.app.recorder)
    process = SettlementProcess(
        writer=ledger.writer, fold=SettlementFold(ledger.app, store), chain=chain,
        config=SettlementConfig(batch_movements=batch, poll_interval_s=0.001),
    )
    try:
        await process.prepare()
        process.fold.catch_up()
        waiting = store.backlog()
        started = time.perf_counter()
        steps = await process.run_until_idle(1_000_000)
        elapsed = time.perf_counter() - started
        assert store.backlog() == 0
        return waiting, elapsed, steps, settlement_cost(embedded, custody.pubkey)
    finally:
        await chain.close()
        store.close()


def scenario(database_url: str | None, movements: int, accounts: int, batch: int | None,
             price: int = 0) -> dict:
    """``batch`` None: as many as fit, as the service settles."""
    folder = Path(tempfile.mkdtemp(prefix="settle-bench-"))
    try:
        with bench_store(database_url) as env:
            ledger = BenchLedger(env)
            try:
                record_movements(ledger, movements, accounts)
                settled, elapsed, steps, cost = asyncio.run(settle(ledger, folder, batch, price))
            finally:
                ledger.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"batch": batch, "movements": settled, "seconds": elapsed, "steps": steps,
            "per_second": settled / elapsed, "cost": cost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batches", default="1,2",
                        help="movements per transaction to compare (0: as many as fit)")
    parser.add_argument("--price", type=int, default=0,
                        help="priority price, micro-lamports per compute unit")
    args = parser.parse_args()
    print(f"{'per tx':>6} {'movements':>9} {'steps':>6} {'seconds':>8} {'movements/s':>12} "
          f"{'txs':>6} {'fees/1k mv':>11} {'+rent/1k mv':>13}")
    for batch in (int(value) or None for value in args.batches.split(",")):
        result = scenario(args.database_url, args.movements, args.accounts, batch, args.price)
        cost: ChainCost = result["cost"]
        print(f"{result['batch'] or 'fit':>6} {result['movements']:>9} {result['steps']:>6} "
              f"{result['seconds']:>8.2f} {result['per_second']:>12.0f} {cost.transactions:>6} "
              f"{cost.fees_per_thousand:>11,.0f} {cost.spent_per_thousand:>13,.0f}", flush=True)


if __name__ == "__main__":
    main()
