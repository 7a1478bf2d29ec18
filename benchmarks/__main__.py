"""``python -m benchmarks`` (and ``deals-ledger bench``, which runs this):
the performance suite (``benchmarks/suite.py``), each scenario's figure next
to its same-run baseline, as a ratio.

Needs PostgreSQL (every scenario gets a fresh schema, dropped at the end)
and, for the HTTP scenarios, Redis when one is given. ``--quick`` shrinks
every size so the whole suite runs in well under a minute: a smoke test of
the harness, whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, machine_note
from benchmarks.report import render
from benchmarks.suite import ALL_SCENARIOS, QUICK, BenchConfig, Sizes, figures_json, run_suite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deals-ledger bench", description=__doc__)
    parser.add_argument("--scenario", type=int, action="append", choices=range(1, 10),
                        metavar="N", help="run scenario N (1-9); repeat for several; default all")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server for the fresh schemas (default DEALS_BENCH_DATABASE_URL, "
                             f"DEALS_DATABASE_URL, else {BENCH_DATABASE_URL_DEFAULT})")
    parser.add_argument("--redis-url", default=None,
                        help="Redis for the servers under test (default DEALS_REDIS_URL)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: proves the suite runs end to end, figures meaningless")
    parser.add_argument("--seconds", type=float, default=None,
                        help="duration of each timed HTTP load (default 15, quick 1.5)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the figures as JSON to FILE")

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark scenarios and print figures, baselines and ratios
    (``deployed`` first: the deployed service's table, ``benchmarks.deployed``)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["deployed"]:
        from benchmarks.deployed import main as deployed_main

        return deployed_main(argv[1:])
    args = build_parser().parse_args(argv)
    url = (args.database_url or os.environ.get("DEALS_BENCH_DATABASE_URL")
           or os.environ.get("DEALS_DATABASE_URL") or BENCH_DATABASE_URL_DEFAULT)
    sizes = QUICK if args.quick else Sizes()
    if args.seconds is not None:
        sizes = replace(sizes, load_seconds=args.seconds)
    scenarios = tuple(sorted(set(args.scenario))) if args.scenario else ALL_SCENARIOS
    config = BenchConfig(database_url=url, redis_url=args.redis_url or os.environ.get("DEALS_REDIS_URL"),
                         scenarios=scenarios, sizes=sizes)
    print(f"machine: {machine_note()}", flush=True)
    # SIGTERM unwinds like Ctrl-C, so the servers stop and the schemas are dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = run_suite(config)
    print(render(figures))
    if args.quick:
        print("(--quick: sizes shrunk for a smoke test; these figures are not measurements)")
    if args.json is not None:
        args.json.write_text(figures_json(figures))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
