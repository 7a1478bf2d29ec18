"""What anchoring costs (issue 17, "Measured"), on PostgreSQL:

1. per anchor: the SQL statements and commits it adds and its CPU time,
   for an anchor over 10,000 new events of a log of ``--events``;
2. proof generation latency (p50/p99) and ``verify-proof`` time (the check
   in process, and the whole CLI as an auditor runs it);
3. scenario 1 (HTTP transfers, 32 connections, settlement on) with anchors
   on and off, alternated ``--runs`` times each, with the spread.

    .venv/bin/python -m benchmarks.anchoring [--events 100000] [--runs 3] [--seconds 10]

Each part gets a fresh schema, dropped at the end; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import http_load as load
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, Filler, fresh_schema, machine_note
from benchmarks.servers import ledger_server

NEW_EVENTS_PER_ANCHOR = 10_000
PROOFS_SAMPLED = 1000
TOKEN = "bench-anchoring-token"


# --- 1 and 2: in process --------------------------------------------------------------


class Counted:
    """Counts calls of an object's methods (statements the anchorer causes)."""

    def __init__(self, target: Any, names: tuple[str, ...]) -> None:
        self.calls: dict[str, int] = {name: 0 for name in names}
        for name in names:
            original = getattr(target, name)
            setattr(target, name, self._counting(name, original))

    def _counting(self, name: str, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return original(*args, **kwargs)

        return call


def anchor_costs(url: str, events: int, work_dir: Path) -> dict[str, Any]:
    from application.eventlog.decoder import EventDecoder
    from application.settlement.anchoring import AnchorConfig, AnchorProcess
    from interface.chain.custody import load_custody_keypair
    from interface.chain.embedded import EmbeddedSolana
    from interface.chain.litesvm_adapter import LiteSvmChain
    from projections.proofs import LogProofs

    with fresh_schema(url) as settings:
        filler = Filler(settings, accounts=200)
        filler.fill(events, per_batch=1000, in_flight=1)
        chain = LiteSvmChain(EmbeddedSolana(work_dir / "chain"),
                             load_custody_keypair(None, work_dir / "keys"))
        anchorer = AnchorProcess(writer=filler.writer, app=filler.app, chain=chain,
                                 config=AnchorConfig(every_events=1, poll_interval_s=0.01))
        first_s, first_cpu_s = _timed_anchor(anchorer)
        filler.fill(filler.app.event_log.head() + NEW_EVENTS_PER_ANCHOR, per_batch=500,
                    in_flight=1)
        before = anchorer.tree.size
        reads = Counted(filler.app.event_log, ("read", "head"))
        loads = Counted(filler.app, ("load",))
        sends = Counted(filler.writer, ("send",))
        wall_s, cpu_s = _timed_anchor(anchorer)
        statements = {"new_events": anchorer.tree.size - before,
                      "page_reads": reads.calls["read"], "aggregate_loads": loads.calls["load"],
                      "commits": sends.calls["send"]}
        proofs = LogProofs(filler.app.event_log, EventDecoder(filler.app.mapper),
                           chain.anchor_signer)
        proof_figures = _proof_latency(proofs, anchorer.tree.position, work_dir / "chain")
        asyncio.run(chain.close())
        filler.writer.stop()
        return {
            "log_events": anchorer.tree.size, "first_anchor_s": first_s,
            "first_anchor_cpu_s": first_cpu_s, "anchor_s": wall_s, "anchor_cpu_s": cpu_s,
            **statements, **proof_figures,
        }


def _timed_anchor(anchorer: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    steps = asyncio.run(anchorer.run_until_idle())
    assert steps >= 1, "nothing was anchored"
    return time.perf_counter() - wall, time.process_time() - cpu


def _proof_latency(proofs: Any, last_position: int, chain_dir: Path) -> dict[str, Any]:
    from interface.cli.verify_proof import _embedded_lookup, check

    started = time.perf_counter()
    proofs.digest()  # the first question builds the tree
    build_s = time.perf_counter() - started
    rng = random.Random(1)
    latencies, checks = [], []
    lookup = _embedded_lookup(chain_dir)
    sample = None
    for _ in range(PROOFS_SAMPLED):
        position = rng.randint(1, last_position)
        begun = time.perf_counter()
        sample = proofs.event_proof(position)
        latencies.append(time.perf_counter() - begun)
        begun = time.perf_counter()
        assert check(sample, lookup, None) == []
        checks.append(time.perf_counter() - begun)
    return {"proof_tree_build_s": build_s, "proof_p50_ms": _ms(latencies, 0.5),
            "proof_p99_ms": _ms(latencies, 0.99), "verify_in_process_p50_ms": _ms(checks, 0.5),
            "verify_cli_s": _cli_verify(sample, chain_dir)}


def _cli_verify(proof: Any, chain_dir: Path, runs: int = 5) -> float:
    path = chain_dir.parent / "proof.json"
    path.write_text(json.dumps(proof))
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        subprocess.run([sys.executable, "-m", "interface.cli", "verify-proof", str(path),
                        "--chain-dir", str(chain_dir)], check=True, capture_output=True)
        times.append(time.perf_counter() - begun)
    return statistics.median(times)


def _ms(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- 3: scenario 1 with anchors on and off ---------------------------------------------


def scenario_1(url: str, anchors: bool, seconds: float, work_dir: Path) -> float:
    with fresh_schema(url) as settings:
        assert settings.postgres_schema is not None
        env = {
            "DEALS_DATABASE_URL": url, "DEALS_POSTGRES_SCHEMA": settings.postgres_schema,
            "DEALS_DATA_DIR": str(work_dir / uuid.uuid4().hex), "DEALS_RATE_LIMIT_PER_S": "0",
            "DEALS_API_KEYS": f"bench:{TOKEN}:admin", "DEALS_SETTLEMENT": "on",
            "DEALS_ANCHORING": "on" if anchors else "off", "DEALS_ANCHOR_EVERY_EVENTS": "1000",
            "DEALS_ANCHOR_EVERY_S": "5",
        }
        with ledger_server(env, work_dir / f"ledger-{uuid.uuid4().hex}.log") as server:
            target = load.Target(server.host, server.port, TOKEN)
            accounts = tuple(str(uuid.uuid4()) for _ in range(100))
            for batch in ([("/v1/accounts", {"account_id": a, "kind": "user"}) for a in accounts],
                          [("/v1/mint", {"transfer_id": str(uuid.uuid4()), "to": a,
                                         "amount": "100000"}) for a in accounts]):
                refused = asyncio.run(load.post_each(target, batch, connections=16))
                if refused:
                    raise RuntimeError(f"funding refused: {refused[:3]}")
            result = asyncio.run(load.drive(target, load.Transfers(accounts=accounts),
                                            connections=32, seconds=seconds))
            return result.per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL_DEFAULT)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deals-anchoring-") as folder:
        work_dir = Path(folder)
        costs = anchor_costs(args.database_url, args.events, work_dir)
        throughput: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.runs):
            for anchors in (False, True):
                throughput[anchors].append(scenario_1(args.database_url, anchors, args.seconds,
                                                      work_dir))
    print(f"machine: {machine_note()}")
    print(json.dumps(costs, indent=2))
    for anchors, figures in throughput.items():
        print(f"scenario 1, anchors {'on' if anchors else 'off'}: "
              f"{statistics.mean(figures):.0f} transfers/s (runs {', '.join(f'{f:.0f}' for f in figures)})")


if __name__ == "__main__":
    main()
