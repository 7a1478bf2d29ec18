"""Projection lag under sustained writes, on PostgreSQL (or SQLite).

Client threads submit transfers through the command writer (the API's path)
for ``--seconds``; the projector runs in a background thread, woken by the
writer's batch observer, as in the API process. A probe measures, every
100 ms, how many events the read models are behind the log, and the
read-your-writes latency: from a probe transfer's answer to the moment a
query naming its position may answer.

    .venv/bin/python -m benchmarks.projection_lag --seconds 30 --clients 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from uuid import uuid4

from application import commands as c
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, fresh_schema, machine_note
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def run(settings: Settings, seconds: float, clients: int, projector: bool = True) -> None:
    service = LedgerService(settings).start(projections=projector)
    try:
        execute = service.writer.execute
        accounts = [uuid4() for _ in range(200)]
        for account in accounts:
            execute(c.OpenAccount(account))
            execute(c.Mint(uuid4(), account, 10**12))
        queries = service.queries
        if not projector:
            service.read_side.projector.catch_up()
        stop = threading.Event()
        done = [0] * clients

        def client(index: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                source = accounts[(index * 31 + n) % len(accounts)]
                destination = accounts[(index * 17 + n * 7 + 1) % len(accounts)]
                if source != destination:
                    execute(c.TransferFunds(uuid4(), source, destination, 1, "load"))
                    done[index] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        start_position = service.app.event_log.head()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        lag_events, ryw_s = [], []
        while time.perf_counter() - started < seconds:
            head = service.app.event_log.head()
            lag_events.append(max(0, head - queries.progress.position))
            probe = execute(c.TransferFunds(uuid4(), accounts[0], accounts[1], 1, "probe"))
            answered = time.perf_counter()
            if projector:
                assert queries.wait_for(probe.position, timeout_s=30)
            ryw_s.append(time.perf_counter() - answered)
            time.sleep(0.1)  # the sampling period, not a synchronisation
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        events = service.app.event_log.head() - start_position
        if not projector:
            print(f"baseline without the projector: {sum(done) / elapsed:,.0f} transfers/s, "
                  f"{events / elapsed:,.0f} events/s")
            return
        assert queries.wait_for(service.app.event_log.head(), timeout_s=60)
        print(f"store: {settings.uses_postgres and 'postgres' or 'sqlite'}, clients: {clients}, "
              f"seconds: {elapsed:.1f}")
        print(f"writes: {sum(done) / elapsed:,.0f} transfers/s, {events / elapsed:,.0f} events/s")
        lag_median = statistics.median(lag_events)
        print(f"lag (events behind, sampled every 100 ms): median {lag_median:,.0f}"
              f", p99 {percentile(lag_events, 0.99):,.0f}, max {max(lag_events):,}")
        print(f"read-your-writes latency: median {statistics.median(ryw_s) * 1e3:.1f} ms, "
              f"p99 {percentile(ryw_s, 0.99) * 1e3:.1f} ms, max {max(ryw_s) * 1e3:.1f} ms "
              f"({len(ryw_s)} probes)")
        report = queries.audit_replay()
        print(f"audit after the run: {len(report.mismatches)} mismatches, supply ok "
              f"{report.supply_ok}")
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--url", default=BENCH_DATABASE_URL_DEFAULT)
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    if args.store == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            run(Settings(data_dir=Path(folder)), args.seconds, args.clients, projector=False)
        with tempfile.TemporaryDirectory() as folder:
            run(Settings(data_dir=Path(folder)), args.seconds, args.clients)
        return
    with fresh_schema(args.url) as settings:
        run(settings, args.seconds, args.clients, projector=False)
    with fresh_schema(args.url) as settings:
        run(settings, args.seconds, args.clients)


if __name__ == "__main__":
    main()
