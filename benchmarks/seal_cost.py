"""What commit seals cost (issue 17, "Measured"), on PostgreSQL.

Every commit the service writes carries a seal (docs/operations.md, "Commit
seals"): in the commit's transaction, under the table lock, one SELECT of
the last seal, one of the head before the commit, one INSERT, and an
HMAC-SHA256 over the commit's events. This measures:

1. the write path of scenario 1 without its HTTP layer: ``--transfers``
   single-transfer commands sent ``--in-flight`` at a time through the
   command writer with the service's group-commit limit (commits of up to
   that many, as 32 connections make), seals off and on, alternated ``--runs`` times each, a fresh
   schema per run, with every run's figure (the spread);
2. the MAC alone for a commit of ``--in-flight`` transfers (3 events each).

The server itself has no way to turn seals off (a ledger that could be
started unsealed would be one a database writer could forge), so the
HTTP scenario 1 A/B is this in-process one.

    .venv/bin/python -m benchmarks.seal_cost [--transfers 3000] [--in-flight 32] [--runs 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from uuid import uuid4

from application import commands as c
from application.authority import INTERNAL
from application.eventlog.seals import SealKey, SealKeys, commit_mac
from application.write.writer import BATCH_COMMANDS_MAX_DEFAULT
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, Filler, fresh_schema, machine_note

KEYS = SealKeys([SealKey("bench", bytes(range(32)))])


def write_path(url: str, sealed: bool, transfers: int, in_flight: int) -> tuple[float, float]:
    """Transfers per second, and CPU seconds of this process per transfer."""
    with fresh_schema(url) as settings:
        filler = Filler(settings, accounts=100, seal_keys=KEYS if sealed else None,
                        batch_commands_max=BATCH_COMMANDS_MAX_DEFAULT)
        accounts = filler.accounts
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            for wave in range(0, transfers, in_flight):
                futures = [filler.writer.send(c.TransferFunds(
                    uuid4(), accounts[i % 100], accounts[(i * 7 + 1) % 100 or 1], 1, "bench"),
                    authority=INTERNAL) for i in range(wave, min(transfers, wave + in_flight))]
                for future in futures:
                    future.result(60)
            elapsed, used = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            filler.writer.stop()
            filler.app.close()
        return transfers / elapsed, used / transfers


def mac_us(in_flight: int) -> float:
    """Microseconds to MAC one commit of ``in_flight`` transfers."""
    state = b'{"amount":1,"reason":"bench","transfer_id":"' + uuid4().hex.encode() + b'"}' * 3
    events = [(position, uuid4().hex, 1, "domain.transfer:Transfer.Recorded", state)
              for position in range(3 * in_flight)]
    runs = 2000
    return timeit.timeit(lambda: commit_mac(KEYS.current, b"\0" * 32, events), number=runs) \
        / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL_DEFAULT)
    parser.add_argument("--transfers", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(args.runs):
        for sealed in (False, True):
            figures[sealed].append(write_path(args.database_url, sealed, args.transfers,
                                              args.in_flight))
    print(f"machine: {machine_note()}")
    print("| seals | transfers/s per run | mean | CPU us per transfer (mean) |")
    print("| --- | --- | ---: | ---: |")
    for sealed, runs in figures.items():
        rates = [rate for rate, _ in runs]
        print(f"| {'on' if sealed else 'off'} | {', '.join(f'{r:.0f}' for r in rates)} "
              f"| {statistics.mean(rates):.0f} "
              f"| {1e6 * statistics.mean(cpu for _, cpu in runs):.0f} |")
    ratios = [on[0] / off[0] for off, on in zip(figures[False], figures[True], strict=True)]
    print(f"on/off per alternated pair: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"HMAC of one commit of {args.in_flight} transfers ({3 * args.in_flight} events): "
          f"{mac_us(args.in_flight):.0f} us")


if __name__ == "__main__":
    main()
