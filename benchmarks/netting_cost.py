"""What netting saves: Solana transactions and fee-payer lamports per 1,000
movements settled, netting off against on, on the embedded LiteSVM chain.

    .venv/bin/python -m benchmarks.netting_cost --movements 1000

Three traffic shapes, each on a fresh ledger and chain: ``1pair`` (every
movement from one payer to one merchant), ``5pairs`` (five payers each
paying its own merchant, interleaved at random) and ``random`` (any
account to any other among 50: pairs rarely repeat). The
accounts are opened, funded and settled first (their token accounts' rent
is not counted); then the movements are recorded and the settler settles
the backlog (``run_until_idle``: the window is not waited, whatever waits
is netted). Lamports are the fee payer's balance before minus after.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import uuid
from pathlib import Path

from application import commands as c
from application.authority import INTERNAL
from application.settlement.fold import SettlementFold
from application.settlement.process import SettlementConfig, SettlementProcess
from application.settlement.store import open_settlement_store
from benchmarks.settlement_throughput import BenchLedger
from benchmarks.write_path import bench_store
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain

SHAPES = {"1pair": 1, "5pairs": 5, "random": 0}
"""Traffic shape -> payer/merchant pairs (0: random among 50 accounts)."""
RANDOM_ACCOUNTS = 50


def send_all(ledger: BenchLedger, commands: list[c.Command]) -> None:
    futures = [ledger.writer.send(command, authority=INTERNAL) for command in commands]
    for future in futures:
        future.result(60)


def open_and_fund(ledger: BenchLedger, accounts: int) -> list[uuid.UUID]:
    opened = [uuid.uuid4() for _ in range(accounts)]
    send_all(ledger, [c.OpenAccount(account) for account in opened])
    send_all(ledger, [c.TransferFunds(uuid.uuid4(), TREASURY_ID, account, 10_000 * UNITS_PER_DEAL)
                      for account in opened])
    return opened


def traffic(shape: str, opened: list[uuid.UUID], movements: int) -> list[c.Command]:
    rng = random.Random(7)
    count = SHAPES[shape]
    pairs = list(zip(opened[:count], opened[count:2 * count], strict=True))
    commands: list[c.Command] = []
    for _ in range(movements):
        source, destination = rng.choice(pairs) if pairs else rng.sample(opened, 2)
        commands.append(c.TransferFunds(uuid.uuid4(), source, destination, rng.randint(1, 1000)))
    return commands


async def measure(ledger: BenchLedger, folder: Path, shape: str, movements: int,
                  netting: bool) -> tuple[int, int]:
    """(transactions, lamports) the settler spent on ``movements``."""
    custody = load_custody_keypair(None, folder / "keys")
    embedded = EmbeddedSolana(folder / "chain")
    chain = LiteSvmChain(embedded, custody)
    store = open_settlement_store(ledger.app.recorder)
    process = SettlementProcess(
        writer=ledger.writer, fold=SettlementFold(ledger.app, store), chain=chain,
        config=SettlementConfig(poll_interval_s=0.001,
                                netting_window_s=0.0 if netting else None),
    )
    try:
        await process.prepare()
        opened = open_and_fund(ledger, 2 * SHAPES[shape] or RANDOM_ACCOUNTS)
        await process.run_until_idle(1_000_000)
        commands = traffic(shape, opened, movements)
        send_all(ledger, commands)
        before = _lamports(embedded, custody.pubkey)
        await process.run_until_idle(1_000_000)
        spent = before - _lamports(embedded, custody.pubkey)
        signatures = {ledger.app.transfer(command.transfer_id).signature  # type: ignore[attr-defined]
                      for command in commands}
        return len(signatures), spent
    finally:
        await chain.close()
        store.close()


def _lamports(embedded: EmbeddedSolana, address: object) -> int:
    account = embedded.get_account(address)  # type: ignore[arg-type]
    return 0 if account is None else int(account.lamports)


def scenario(database_url: str | None, shape: str, movements: int, netting: bool
             ) -> tuple[int, int]:
    folder = Path(tempfile.mkdtemp(prefix="netting-bench-"))
    try:
        with bench_store(database_url) as env:
            ledger = BenchLedger(env)
            try:
                return asyncio.run(measure(ledger, folder, shape, movements, netting))
            finally:
                ledger.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    per = 1000 / args.movements
    print(f"{'traffic':>8} {'netting':>8} {'tx/1000':>8} {'lamports/1000':>14}")
    for shape in SHAPES:
        for netting in (False, True):
            transactions, lamports = scenario(args.database_url, shape, args.movements, netting)
            print(f"{shape:>8} {'on' if netting else 'off':>8} {transactions * per:>8.0f} "
                  f"{lamports * per:>14,.0f}", flush=True)


if __name__ == "__main__":
    main()
