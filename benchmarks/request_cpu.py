"""CPU time per ``POST /v1/transfers`` on ``deals-ledger serve``, for two
versions of the code side by side (issue 14, "The request path's profile").

    .venv/bin/python -m benchmarks.request_cpu --tree before=/tmp/base --tree after=. \\
        --redis-url redis://127.0.0.1:6379/0 [--rounds 4] [--rate 150] [--seconds 10]

Each ``--tree LABEL=DIR`` is a checkout of the ledger; its server runs
``python -m interface.cli serve`` from that folder (``PYTHONPATH=DIR``, this
venv's packages), in a fresh schema, projections in process, settlement off
and the rate limit off (one key), as the profile section ran it. The servers
stay up side by side and take turns: each round gives every tree the same
open-loop load (a request every 1/rate s on 32 keep-alive connections,
``deployed.fixed_rate``) and reads ``/proc`` before and after: CPU of the
server's process tree, of its main thread alone (the event loop) and of the
PostgreSQL backends serving it. Alternating rounds, and ratios taken within
a round, are what a machine shared with other work allows; the load average
is printed with every round.

``--profile SECONDS`` also records each server with py-spy (``-r 100``,
``--idle`` off) during one more round, into ``WORK_DIR/LABEL.txt``
(collapsed stacks, one line per stack).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import http_load as load
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT
from benchmarks.deployed import fixed_rate
from benchmarks.deployed_watch import CpuMeter
from benchmarks.projection_lag import percentile
from benchmarks.servers import ServerProcess
from benchmarks.suite import fresh_schema, redis_prefix
from benchmarks.wrk_load import WrkRun, lua_script, run_wrk


@dataclass
class Tree:
    label: str
    folder: Path
    server: ServerProcess | None = None
    accounts: tuple[str, ...] = ()


def _thread_cpu_s(pid: int) -> float:
    """The main thread's CPU seconds (``/proc/PID/task/PID/stat``)."""
    raw = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``, by thread id."""
    spent = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        spent[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def _thread_names(pid: int) -> dict[int, str]:
    """Python's names of ``pid``'s threads, by thread id (``py-spy dump``:
    Python 3.11 does not give threads' names to the OS)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    dump = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True,  # noqa: S603
                          check=False).stdout
    names = {}
    for line in dump.splitlines():
        found = re.match(r'Thread (0x[0-9A-Fa-f]+|\d+) \((?:active|idle)[^)]*\): "([^"]*)"', line)
        if found:
            ident = found.group(1)
            names[int(ident, 16) if ident.startswith("0x") else int(ident)] = found.group(2)
    return names


def _server(tree: Tree, schema: str, token: str, options: argparse.Namespace,
            work_dir: Path) -> ServerProcess:
    data_dir = work_dir / f"{tree.label}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DEALS_")},
           "PYTHONPATH": str(tree.folder.resolve()),
           "DEALS_DATABASE_URL": options.database_url, "DEALS_POSTGRES_SCHEMA": schema,
           "DEALS_DATA_DIR": str(data_dir), "DEALS_API_KEYS": f"bench:{token}:admin",
           "DEALS_RATE_LIMIT_PER_S": "0", "DEALS_SETTLEMENT": "off",
           "DEALS_REDIS_PREFIX": redis_prefix(schema)}
    if options.redis_url:
        env["DEALS_REDIS_URL"] = options.redis_url
    argv = [sys.executable, "-m", "interface.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    return ServerProcess(argv, env, work_dir / f"{tree.label}.log", cwd=tree.folder)


def _fund(target: load.Target, count: int) -> tuple[str, ...]:
    accounts = tuple(str(uuid.uuid4()) for _ in range(count))
    opens = [("/v1/accounts", {"account_id": a, "kind": "user"}) for a in accounts]
    mints = [("/v1/mint", {"transfer_id": str(uuid.uuid4()), "to": a, "amount": "100000"})
             for a in accounts]
    for batch in (opens, mints):
        refused = asyncio.run(load.post_each(target, batch, connections=16))
        if refused:
            raise RuntimeError(f"funding refused: {refused[:3]}")
    return accounts


def _pages(target: load.Target) -> tuple[float, float]:
    """The projector's pages committed and events applied so far (its
    ``/metrics``): how many events a page holds is what its round trips
    are shared by."""
    with urllib.request.urlopen(f"http://{target.host}:{target.port}/metrics",  # noqa: S310
                                timeout=10) as answer:
        text = answer.read().decode()
    found = {name: float(value) for name, value in re.findall(
        r'^(projection_page_commit_seconds_count|projection_events_total)'
        r'\{projection="read_models"\} (\S+)$', text, re.MULTILINE)}
    return (found.get("projection_page_commit_seconds_count", 0.0),
            found.get("projection_events_total", 0.0))


def _round(tree: Tree, token: str, options: argparse.Namespace) -> dict[str, float]:
    assert tree.server is not None and tree.server.process is not None
    pid = tree.server.process.pid
    meter = CpuMeter(pid, options.database_url)
    target = load.Target(tree.server.host, tree.server.port, token)
    pages_before = _pages(target)
    before, loop_before, threads_before = meter.sample(), _thread_cpu_s(pid), _threads_cpu_s(pid)
    started = time.monotonic()
    ok, lags = _load(tree, target, token, options)
    elapsed = time.monotonic() - started
    after, loop_after, threads_after = meter.sample(), _thread_cpu_s(pid), _threads_cpu_s(pid)
    spent = CpuMeter.spent(before, after)
    per = 1000 / max(ok, 1)
    pages_after = _pages(target)
    pages, events = (pages_after[0] - pages_before[0], pages_after[1] - pages_before[1])
    if getattr(options, "threads", False):
        names = _thread_names(pid)
        by_name: dict[str, float] = {}
        for tid, seconds in threads_after.items():
            name = re.sub(r"\d+", "N", names.get(tid, f"tid {tid}"))
            by_name[name] = by_name.get(name, 0.0) + (seconds - threads_before.get(tid, 0.0)) * per
        shown = sorted(by_name.items(), key=lambda item: -item[1])
        print(f"  {tree.label} threads (ms a transfer): "
              + ", ".join(f"{name} {ms:.3f}" for name, ms in shown if ms >= 0.005), flush=True)
    return {"ok": ok, "per_s": ok / elapsed, "service_ms": spent["service"] * per,
            "loop_ms": (loop_after - loop_before) * per, "postgres_ms": spent["postgres"] * per,
            "pages": pages, "events_per_page": events / max(pages, 1),
            "lag_p50_ms": percentile(lags, 0.5) * 1000, "lag_p99_ms": percentile(lags, 0.99) * 1000}


def _load(tree: Tree, target: load.Target, token: str, options: argparse.Namespace
          ) -> tuple[int, list[float]]:
    """Transfers accepted under the round's load: the open-loop sender at
    ``--rate``, or with ``--wrk`` a closed wrk load (2 threads, 32
    connections, the deployed bench's script); with the open-loop sender
    also the read-your-writes lag (s) of the deployed bench's probe."""
    if not options.wrk:
        async def fixed() -> tuple[int, list[float]]:
            finished = False
            probe = asyncio.create_task(load.sample_read_lag(
                target, (tree.accounts[0], tree.accounts[1]), lambda: finished))
            ok = await fixed_rate(target, load.Transfers(accounts=tree.accounts),
                                  options.rate, options.seconds, 32)
            finished = True
            return ok, await probe
        return asyncio.run(fixed())
    script = Path(tempfile.mkdtemp(prefix="request-cpu-wrk-")) / "transfers.lua"
    script.write_text(lua_script("transfers", tree.accounts, token,
                                 seed=random.randrange(1, 10**6)))  # noqa: S311
    result = asyncio.run(run_wrk(f"http://{target.host}:{target.port}", script,
                                 WrkRun(seconds=options.seconds)))
    shutil.rmtree(script.parent)
    return result.ok, []


def _profile(tree: Tree, token: str, options: argparse.Namespace, work_dir: Path) -> Path:
    assert tree.server is not None and tree.server.process is not None
    out = work_dir / f"{tree.label}.txt"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    recorder = subprocess.Popen(  # noqa: S603 - our own arguments
        [spy, "record", "-r", "100", "-f", "raw", "-t", "-d", str(int(options.profile)),
         "-p", str(tree.server.process.pid), "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # py-spy attaches before the load starts
    _round(tree, token, argparse.Namespace(**{**vars(options), "seconds": options.profile - 2}))
    recorder.wait()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_cpu",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=DIR")
    parser.add_argument("--database-url", default=BENCH_DATABASE_URL_DEFAULT)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--wrk", action="store_true",
                        help="a closed wrk load (2 threads, 32 connections) instead of --rate")
    parser.add_argument("--threads", action="store_true",
                        help="also print each thread's CPU per transfer, by its Python name")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS")
    options = parser.parse_args(argv)
    trees = [Tree(label, Path(folder)) for label, _, folder in
             (spec.partition("=") for spec in options.tree)]
    token = secrets.token_urlsafe(24)
    work_dir = Path(tempfile.mkdtemp(prefix="request-cpu-"))
    with ExitStack() as stack:
        for tree in trees:
            schema = stack.enter_context(fresh_schema(options.database_url, options.redis_url))
            tree.server = stack.enter_context(_server(tree, schema, token, options, work_dir))
            target = load.Target(tree.server.host, tree.server.port, token)
            tree.accounts = _fund(target, options.accounts)
            _round(tree, token, argparse.Namespace(**{**vars(options), "seconds": 3}))  # warm-up
        print(f"{'wrk, 32 connections' if options.wrk else f'{options.rate:g} req/s'} "
              f"for {options.seconds:g} s a round; "
              f"CPU ms per accepted transfer", flush=True)
        for number in range(options.rounds):
            order = trees if number % 2 == 0 else list(reversed(trees))
            for tree in order:
                figures = _round(tree, token, options)
                print(f"round {number + 1} {tree.label:>8}: accepted {figures['ok']:.0f} "
                      f"({figures['per_s']:.0f}/s), "
                      f"service {figures['service_ms']:.3f} (event loop {figures['loop_ms']:.3f}), "
                      f"postgres {figures['postgres_ms']:.3f}; projector pages "
                      f"{figures['pages']:.0f} ({figures['events_per_page']:.1f} events a page), "
                      f"read-your-writes p50 {figures['lag_p50_ms']:.1f} ms, "
                      f"p99 {figures['lag_p99_ms']:.1f} ms; "
                      f"load average "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
        if options.profile:
            for tree in trees:
                print(f"profile {tree.label}: {_profile(tree, token, options, work_dir)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
