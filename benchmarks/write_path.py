"""In-process benchmark of the write path: commands per second with and
without group commit, measured in the same run on the same store.

    .venv/bin/python -m benchmarks.write_path --database-url postgresql://root@127.0.0.1:5432/postgres

Without --database-url it runs on SQLite in a temporary folder. A fresh
PostgreSQL schema is created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from application import commands as c
from application.authority import INTERNAL
from application.write.aggregate_cache import AggregateCache
from application.write.event_store import LedgerApplication
from application.write.processor import CommandProcessor
from application.write.writer import CommandWriter
from benchmarks.plain_eventsourcing import plain_env, transfers_per_second
from domain.amounts import UNITS_PER_DEAL
from interface.wiring.settings import Settings


@contextmanager
def bench_store(database_url: str | None):
    folder = Path(tempfile.mkdtemp())
    if not database_url:
        yield Settings(data_dir=folder).eventsourcing_env()
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Settings(data_dir=folder, database_url=database_url,
                       postgres_schema=schema).eventsourcing_env()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def open_funded_accounts(writer: CommandWriter, count: int) -> list[uuid.UUID]:
    accounts = [uuid.uuid4() for _ in range(count)]
    for future in [writer.send(c.OpenAccount(a), authority=INTERNAL) for a in accounts]:
        future.result()
    mints = [writer.send(c.Mint(uuid.uuid4(), a, 1000 * UNITS_PER_DEAL), authority=INTERNAL)
             for a in accounts]
    for future in mints:
        future.result()
    return accounts


def make_transfers(accounts: list[uuid.UUID], count: int, rng: random.Random):
    for _ in range(count):
        source, destination = rng.sample(accounts, 2)
        yield c.TransferFunds(uuid.uuid4(), source, destination, rng.randint(1, 1000))


def make_fees(accounts: list[uuid.UUID], count: int, rng: random.Random):
    for _ in range(count):
        yield c.ChargeFee(uuid.uuid4(), rng.choice(accounts), "notification")


def run_load(writer: CommandWriter, commands: list[c.Command], in_flight: int) -> dict:
    """Keep ``in_flight`` commands outstanding, as that many clients would."""
    latencies: list[float] = []
    started = time.perf_counter()
    pending: list = []
    for command in commands:
        pending.append((time.perf_counter(), writer.send(command, authority=INTERNAL)))
        if len(pending) >= in_flight:
            submitted, future = pending.pop(0)
            future.result()
            latencies.append(time.perf_counter() - submitted)
    for submitted, future in pending:
        future.result()
        latencies.append(time.perf_counter() - submitted)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "per_s": len(commands) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


def scenario(env: dict, *, batch_max: int, build: Callable, count: int, in_flight: int) -> dict:
    app = LedgerApplication(env)
    processor = CommandProcessor(app, cache=AggregateCache(100_000))
    writer = CommandWriter(processor, batch_commands_max=batch_max).start()
    try:
        writer.execute(c.Genesis(), authority=INTERNAL)
        accounts = open_funded_accounts(writer, 1000)
        rng = random.Random(1)  # noqa: S311
        commands = list(build(accounts, count, rng))
        result = run_load(writer, commands, in_flight)
        result["conflicts"] = processor.conflicts
        return result
    finally:
        writer.stop()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=256)
    args = parser.parse_args()
    with bench_store(args.database_url) as env:
        plain_single = transfers_per_second(plain_env(env), transfers=args.count // 10, per_save=1)
    with bench_store(args.database_url) as env:
        plain_batched = transfers_per_second(plain_env(env), transfers=args.count, per_save=200)
    with bench_store(args.database_url) as env:
        off = scenario(env, batch_max=1, build=make_transfers, count=args.count // 4,
                       in_flight=args.in_flight)
    with bench_store(args.database_url) as env:
        on = scenario(env, batch_max=1000, build=make_transfers, count=args.count,
                      in_flight=args.in_flight)
    with bench_store(args.database_url) as env:
        fees = scenario(env, batch_max=1000, build=make_fees, count=args.count,
                        in_flight=args.in_flight)
    rows = [("transfers, one transaction per command (baseline)", off),
            ("transfers, group commit", on),
            ("fees into the one treasury, group commit", fees)]
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"write path on {store}, {args.in_flight} commands in flight")
    print(f"plain eventsourcing: {plain_single:.0f} transfers/s one save each, "
          f"{plain_batched:.0f}/s with 200 per save")
    print(f"{'scenario':48} {'cmd/s':>8} {'vs 1/txn':>8} {'vs plain200':>11} "
          f"{'p50 ms':>7} {'p99 ms':>7}")
    for name, row in rows:
        print(f"{name:48} {row['per_s']:8.0f} {row['per_s'] / off['per_s']:8.2f} "
              f"{row['per_s'] / plain_batched:11.2f} {row['p50_ms']:7.1f} {row['p99_ms']:7.1f}")


if __name__ == "__main__":
    main()
