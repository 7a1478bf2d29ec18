"""``deals-ledger bench``: the performance suite, run as its own program.

The harness (``benchmarks/``) drives the product from outside, as users
start it, so the product never imports it: this subcommand replaces its own
process with ``python -m benchmarks`` and hands it every argument
(``deals-ledger bench --help`` lists them). DESIGN lists ``bench`` among the
CLI's subcommands; the harness stays one layer above everything it measures.
"""

from __future__ import annotations

import argparse
import os
import sys

from interface.wiring.settings import Settings


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark scenarios (``python -m benchmarks``) with these options."""
    argv = [sys.executable, "-m", "benchmarks", *args.passed_through]
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and harness
    return 0  # pragma: no cover - execv does not return


run_bench.own_help = False  # type: ignore[attr-defined]
