"""What the proofs' tree holds in memory (issue 17: an API process that
answers proofs must not keep a hash per event).

Builds the whole tree (``LogTree``, what the audit uses for one run) and the
bounded one (``ChunkedLogTree``, what ``LogProofs`` keeps for as long as the
process runs) over the same synthetic log of ``--events`` events, generated
on the fly (so the log itself takes no memory), and reports the memory each
holds after catching up and answering ``--proofs`` inclusion proofs
(``tracemalloc``: Python allocations, which is where the tree lives), and the
proofs' latency. No database: this measures the data structure only.

    .venv/bin/python -m benchmarks.proof_memory [--events 100000] [--proofs 1000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import time
import tracemalloc
from typing import Any

from application.eventlog.merkle_log import CHUNK_BITS, ChunkedLogTree, LogTree
from application.eventlog.reader import LogEvent
from benchmarks.common import machine_note

TOPIC = "domain.transfer:Transfer.Recorded"


class SyntheticLog:
    """``events`` events at positions 1..n, each made from its position."""

    def __init__(self, events: int) -> None:
        self.events = events

    def read(self, after: int, limit: int, upto: int | None = None) -> list[LogEvent]:
        last = min(self.events, after + limit, upto if upto is not None else self.events)
        return [self._event(position) for position in range(after + 1, last + 1)]

    @staticmethod
    def _event(position: int) -> LogEvent:
        digest = hashlib.sha256(position.to_bytes(8, "big")).hexdigest()
        state = b'{"amount":100000000,"reason":"bench","id":"' + digest.encode() + b'"}'
        return LogEvent(position, digest[:32], 1, TOPIC, state)


def measure(kind: str, events: int, proofs: int, chunk_bits: int = 8) -> dict[str, Any]:
    log = SyntheticLog(events)
    gc.collect()
    tracemalloc.start()
    tree: Any = (LogTree(log) if kind == "whole"  # type: ignore[arg-type]
                 else ChunkedLogTree(log, chunk_bits=chunk_bits))  # type: ignore[arg-type]
    started = time.perf_counter()
    tree.catch_up()
    build_s = time.perf_counter() - started
    rng = random.Random(1)
    latencies = []
    for _ in range(proofs):
        position = rng.randint(1, events)
        begun = time.perf_counter()
        index = tree.index_of(position)
        tree.tree.inclusion_proof(index, tree.size)
        latencies.append(time.perf_counter() - begun)
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    latencies.sort()
    return {"tree": kind, "events": events, "held_bytes": held,
            "bytes_per_event": held / events, "peak_bytes": peak, "build_s": build_s,
            "proof_p50_ms": 1000 * latencies[len(latencies) // 2],
            "proof_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--chunk-bits", type=int, action="append",
                        help="chunked trees to measure (default: the service's)")
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    print("| tree | events | held after the proofs | per event | peak while building "
          "| build s | proof p50 ms | proof p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    runs = [("whole", 0)] + [("chunked", bits) for bits in args.chunk_bits or [CHUNK_BITS]]
    for kind, bits in runs:
        r = measure(kind, args.events, args.proofs, bits)
        name = kind if kind == "whole" else f"chunked, {1 << bits:,} events a chunk"
        print(f"| {name} | {r['events']:,} | {r['held_bytes'] / 2**20:.2f} MiB "
              f"| {r['bytes_per_event']:.1f} B | {r['peak_bytes'] / 2**20:.2f} MiB "
              f"| {r['build_s']:.2f} | {r['proof_p50_ms']:.2f} | {r['proof_p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
