"""A bounded soak: ``deals-ledger serve`` on PostgreSQL and Redis, settling
on its embedded chain, under a steady rate of transfers and fees, with its
resident memory sampled every second and every answer's latency recorded.

No growth without bound: after a warm-up, memory may not keep climbing (the
second half's slope is bounded, absolutely and against the first half's),
and the service keeps the offered rate. Then the usual promises: nothing
lost or doubled, audit and reconciliation clean. p99 latency early and late
is printed with the report but not asserted: on shared CI cores it moves
with whatever else runs (0.128 s against 0.303 s once), so latency drift is
measured by the benchmarks (benchmarks/README.md), not by a test.

DEALS_SOAK_SECONDS sets the duration (CI default below; the README gives the
10-minute run); DEALS_SOAK_RATE_PER_S the offered rate. The aggregate cache
is capped low so that it is full within the warm-up: a bounded cache
filling up is not what this test looks for.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import quantiles

import pytest

from tests.interface.helpers import funded_account
from tests.reliability.conftest import serve_env
from tests.reliability.guarantees import assert_guarantees
from tests.reliability.load import Load
from tests.support.http import ADMIN, ServeProcess

SOAK_S = float(os.environ.get("DEALS_SOAK_SECONDS") or 75)
RATE_PER_S = float(os.environ.get("DEALS_SOAK_RATE_PER_S") or 60)
WARM_UP_FRACTION = 0.2
CACHED_AGGREGATES_MAX = 500
RSS_SLOPE_KIB_PER_S_MAX = 64.0
"""Second-half growth allowed regardless of the first half: 3.75 MiB a minute."""
SETUP_AND_CHECKS_S_MAX = 240
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SOAK_S + SETUP_AND_CHECKS_S_MAX)]
RATE_KEPT_FRACTION_MIN = 0.9


@dataclass(frozen=True)
class RssSample:
    at_s: float
    kib: int


class RssSampler:
    """Samples a process's VmRSS once a second in a thread (a rate, not a wait)."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[RssSample] = []
        self._started = time.monotonic()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.samples.append(RssSample(time.monotonic() - self._started, rss_kib(self.pid)))

    def stop(self) -> list[RssSample]:
        self._stopping.set()
        self._thread.join(10)
        return self.samples


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def slope_kib_per_s(samples: list[RssSample]) -> float:
    """Least-squares slope of RSS over time."""
    n = len(samples)
    mean_t = sum(s.at_s for s in samples) / n
    mean_r = sum(s.kib for s in samples) / n
    covariance = sum((s.at_s - mean_t) * (s.kib - mean_r) for s in samples)
    variance = sum((s.at_s - mean_t) ** 2 for s in samples)
    return covariance / variance


def p99_s(latencies: list[float]) -> float:
    return quantiles(latencies, n=100, method="inclusive")[98]


def test_a_steady_load_keeps_its_rate_without_growing_memory(pg_service, tmp_path: Path):
    env = serve_env(pg_service) | {"DEALS_MAX_CACHED_AGGREGATES": str(CACHED_AGGREGATES_MAX)}
    server = ServeProcess(tmp_path, env)
    try:
        with server.client(ADMIN) as admin:
            accounts = [funded_account(admin, "100000") for _ in range(8)]
            sampler = RssSampler(server.process.pid)
            # 16 paced clients: each owes a command every 267 ms, so the offered
            # rate is kept while answers take less than that on average; with 4
            # (67 ms each) a busy CPU turned this rate check into a latency bound.
            load = Load([server.url], accounts, clients=16, rate_per_s=RATE_PER_S).start()
            started = time.monotonic()
            try:
                time.sleep(SOAK_S)  # the soak's length is its point: nothing to wait on
            finally:
                book = load.stop()
                elapsed_s = time.monotonic() - started
                samples = sampler.stop()
            report = soak_report(book, samples, started, elapsed_s)
            (tmp_path / "soak.json").write_text(json.dumps(report, indent=2))
            print("soak:", json.dumps({k: v for k, v in report.items() if k != "rss"}))
            assert not book.surprises, book.surprises
            assert report["rate_per_s"] >= RATE_KEPT_FRACTION_MIN * RATE_PER_S, report
            first, second = report["rss_slope_kib_per_s"]
            assert second <= max(RSS_SLOPE_KIB_PER_S_MAX, first / 2), report
            assert_guarantees(pg_service.eventsourcing_env(), book, accounts, admin)
        assert server.terminate() == 0
    finally:
        server.kill()


def soak_report(book, samples: list[RssSample], started: float, elapsed_s: float) -> dict:
    warm = [s for s in samples if s.at_s >= WARM_UP_FRACTION * elapsed_s]
    half = len(warm) // 2
    timed = [(at - started, latency) for at, latency in book.latencies_s if at >= started]
    cut = WARM_UP_FRACTION * elapsed_s
    early = [lat for at, lat in timed if cut <= at < cut + (elapsed_s - cut) / 4]
    late = [lat for at, lat in timed if at >= elapsed_s - (elapsed_s - cut) / 4]
    return {
        "seconds": round(elapsed_s, 1),
        "acknowledged": len(book.acknowledged),
        "rate_per_s": round(len(timed) / elapsed_s, 1),
        "rss_kib_first_last": [warm[0].kib, warm[-1].kib],
        "rss_slope_kib_per_s": [round(slope_kib_per_s(warm[:half]), 2),
                                round(slope_kib_per_s(warm[half:]), 2)],
        "p99_s": [round(p99_s(early), 4), round(p99_s(late), 4)],
        "rss": [(round(s.at_s, 1), s.kib) for s in samples],
    }
