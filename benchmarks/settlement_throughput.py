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
from application.eventlog.reader import LogEvent
from application.settlement.fold import SettlementFold
from application.settlement.process import SettlementConfig, SettlementProcess
from application.settlement.store import SettlementStore
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


def record_movements(ledger: BenchLedger, movements: int, accounts: int,
                     into_treasury: float = 0.0) -> None:
    """Fund the accounts from the treasury, then random transfers between
    them (each small enough that no account runs dry); ``into_treasury``:
    the share of those paid into the treasury instead, as fees are (every
    one of them touches that one account)."""
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
        if rng.random() < into_treasury:
            destination = TREASURY_ID
        moved = c.TransferFunds(uuid.uuid4(), source, destination, 1)
        futures.append(ledger.writer.send(moved, authority=INTERNAL))
    for future in futures:
        future.result(60)


class CountingFold(SettlementFold):
    """The settlement fold, counting the pages it applies (one store
    transaction each)."""

    def __init__(self, app: LedgerApplication, store: SettlementStore,
                 counts: dict[str, int]) -> None:
        super().__init__(app, store)
        self.counts = counts

    def apply_page(self, previous: int, events: list[LogEvent]) -> None:
        super().apply_page(previous, events)
        self.counts["pages"] += 1


def priority_fees(price: int) -> PriorityFees:
    """The price with the smallest cap that admits it."""
    return PriorityFees(price, priority_fee_lamports(COMPUTE_UNIT_LIMIT_MAX, price))


async def settle(ledger: BenchLedger, folder: Path, batch: int | None,
                 price: int = 0) -> tuple[int, float, int, ChainCost, dict[str, int]]:
    """Settle the backlog; with what it took: writer groups (durable
    commits through the command writer) and settlement fold pages."""
    from application.settlement.store import open_settlement_store

    custody = load_custody_keypair(None, folder / "keys")
    embedded = EmbeddedSolana(folder / "chain")
    chain = LiteSvmChain(embedded, custody, fees=priority_fees(price))
    store = open_settlement_store(ledger.app.recorder)
    counts = {"groups": 0, "pages": 0}
    fold = CountingFold(ledger.app, store, counts)
    process = SettlementProcess(
        writer=ledger.writer, fold=fold, chain=chain,
        config=SettlementConfig(batch_movements=batch, poll_interval_s=0.001),
    )
    try:
        await process.prepare()
        process.fold.catch_up()
        waiting = store.backlog()
        counts["pages"] = 0
        ledger.writer.add_observer(lambda _report: counts.__setitem__("groups", counts["groups"] + 1))
        started = time.perf_counter()
        steps = await process.run_until_idle(1_000_000)
        elapsed = time.perf_counter() - started
        assert store.backlog() == 0
        return waiting, elapsed, steps, settlement_cost(embedded, custody.pubkey), counts
    finally:
        await chain.close()
        store.close()


def scenario(database_url: str | None, movements: int, accounts: int, batch: int | None,
             price: int = 0, into_treasury: float = 0.0) -> dict:
    """``batch`` None: as many as fit, as the service settles."""
    folder = Path(tempfile.mkdtemp(prefix="settle-bench-"))
    try:
        with bench_store(database_url) as env:
            ledger = BenchLedger(env)
            try:
                record_movements(ledger, movements, accounts, into_treasury)
                settled, elapsed, steps, cost, counts = asyncio.run(
                    settle(ledger, folder, batch, price))
            finally:
                ledger.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"batch": batch, "movements": settled, "seconds": elapsed, "steps": steps,
            "per_second": settled / elapsed, "cost": cost, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batches", default="1,2",
                        help="movements per transaction to compare (0: as many as fit)")
    parser.add_argument("--price", type=int, default=0,
                        help="priority price, micro-lamports per compute unit")
    parser.add_argument("--into-treasury", type=float, default=0.0,
                        help="share of the transfers paid into the treasury, as fees are")
    args = parser.parse_args()
    print(f"{'per tx':>6} {'movements':>9} {'steps':>6} {'seconds':>8} {'movements/s':>12} "
          f"{'txs':>6} {'groups':>6} {'pages':>6} {'fees/1k mv':>11} {'+rent/1k mv':>13}")
    for batch in (int(value) or None for value in args.batches.split(",")):
        result = scenario(args.database_url, args.movements, args.accounts, batch, args.price,
                          args.into_treasury)
        cost: ChainCost = result["cost"]
        print(f"{result['batch'] or 'fit':>6} {result['movements']:>9} {result['steps']:>6} "
              f"{result['seconds']:>8.2f} {result['per_second']:>12.0f} {cost.transactions:>6} "
              f"{result['groups']:>6} {result['pages']:>6} "
              f"{cost.fees_per_thousand:>11,.0f} {cost.spent_per_thousand:>13,.0f}", flush=True)


if __name__ == "__main__":
    main()
