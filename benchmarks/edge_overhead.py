"""What the connection edge (interface/http/edge.py) costs on the hot path.

The bare baseline endpoint (``benchmarks.bare_server``: the ledger's own
transfer body validated, nothing else) served twice at once, by stock
uvicorn and through the edge (``--edge``), and driven in turns (A, B, A,
B...) with the same closed-loop keep-alive load, so the shared machine's
drift falls on both alike. The edge's work per request (a few attribute
writes; no timer when a request arrives in one read) is what the ratio shows.

    python -m benchmarks.edge_overhead [--rounds 6] [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.http_load import LoadResult, Target, Transfers, drive
from benchmarks.servers import ServerProcess

ACCOUNTS = ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002")


def _server(edge: bool, log_dir: Path) -> ServerProcess:
    argv = [sys.executable, "-m", "benchmarks.bare_server", *(["--edge"] if edge else [])]
    return ServerProcess(argv, dict(os.environ), log_dir / f"bare-{'edge' if edge else 'stock'}.log")


def _load(server: ServerProcess, seconds: float, connections: int) -> LoadResult:
    target = Target(server.host, server.port)
    return asyncio.run(drive(target, Transfers(accounts=ACCOUNTS), connections=connections,
                             seconds=seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edge_overhead")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    results: dict[str, list[LoadResult]] = {"stock": [], "edge": []}
    with tempfile.TemporaryDirectory() as log_dir, \
            _server(False, Path(log_dir)) as stock, _server(True, Path(log_dir)) as edge:
        _load(stock, 1.0, args.connections)  # warm both up
        _load(edge, 1.0, args.connections)
        for round_ in range(args.rounds):
            order = [("stock", stock), ("edge", edge)]
            for name, server in order if round_ % 2 == 0 else order[::-1]:
                results[name].append(_load(server, args.seconds, args.connections))
    for name, runs in results.items():
        print(f"{name:6} median {statistics.median(r.per_s for r in runs):8,.0f} req/s   "
              f"p50 {statistics.median(r.percentile_ms(0.5) for r in runs):5.1f} ms   "
              f"p99 {statistics.median(r.percentile_ms(0.99) for r in runs):5.1f} ms   "
              f"runs {', '.join(f'{r.per_s:,.0f}' for r in runs)}")
    ratio = (statistics.median(r.per_s for r in results["edge"])
             / statistics.median(r.per_s for r in results["stock"]))
    print(f"edge / stock: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
