"""``deals-ledger bench deployed``: the service as deployed (issue 14), next to
a bare FastAPI endpoint and pgledger in the same run, as the issue's table.

    .venv/bin/deals-ledger bench deployed --redis-url redis://127.0.0.1:6379/0 \\
        [--pgledger DIR] [--seconds 10] [--replay-events 1000000]

A command of its own rather than scenario 10 of ``deals-ledger bench``: its
server runs settlement (scenarios 1-9 run with it off, and a settlement
backlog would change their figures), its load generator is wrk, not the
suite's Python client, and it needs inputs the suite does not (pgledger's
files, wrk's package).

The steps, in order, on one ``deals-ledger serve`` started as the README
starts it (projections and settlement on, the embedded LiteSVM chain,
PostgreSQL + Redis; only the rate limit off, as the load is one key):

 1 open and fund the accounts (1,000); wait until their mints are settled:
   settlement capacity alone, with nothing else running
 2 wrk POST /v1/transfers, then POST /v1/fees (all into the treasury): 2
   threads, 32 connections, random pairs; the projection lag probe beside
 3 settlement of the movements the two loads made: wait for the last one
 4 CPU time per transfer at a fixed offered load (an open-loop Python
   sender at ``--fixed-rate`` req/s: wrk2 is not in Debian); then the same
   sender at the transfers load's own rate for 60 s: the settlement backlog
 5 wrk POST /v1/transfers/batch, 1,000 a request, 4 in flight
 6 RSS of the service's processes
then the bare endpoint under the same wrk transfers script, pgledger under
pgbench (uniform and hot account, 32 clients) and the audit replay of
scenario 5 (``benchmarks.replay_bench``) with its raw keyset SELECT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks import http_load as load
from benchmarks import pgledger_peer as peer
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, machine_note
from benchmarks.deployed_report import Fixed, Loaded, Results, Settled, Sustained, render
from benchmarks.deployed_watch import CpuMeter, SettlementWatch, process_tree, rss_bytes
from benchmarks.servers import ServerProcess, bare_server, ledger_server
from benchmarks.suite import EVENTS_TABLE, fresh_schema, redis_prefix
from benchmarks.wrk_load import WrkRun, ensure_wrk, lua_script, run_wrk


@dataclass
class Options:
    database_url: str
    redis_url: str | None
    pgledger: Path | None = None
    accounts: int = 1000
    seconds: float = 10.0
    threads: int = 2
    connections: int = 32
    batch_items: int = 1000
    batch_in_flight: int = 4
    fixed_rate: float = 200.0
    replay_events: int = 1_000_000
    settle_timeout_s: float = 600.0
    sustained_s: float = 60.0


class Deployed:
    def __init__(self, options: Options, work_dir: Path) -> None:
        self.o = options
        self.work_dir = work_dir
        self.token = secrets.token_urlsafe(24)
        self.results = Results()
        self.run_wrk = WrkRun(options.threads, options.connections, options.seconds)

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # --- the service ------------------------------------------------------------

    def _env(self, schema: str) -> dict[str, str]:
        data_dir = self.work_dir / schema
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {"DEALS_DATABASE_URL": self.o.database_url, "DEALS_POSTGRES_SCHEMA": schema,
               "DEALS_DATA_DIR": str(data_dir), "DEALS_API_KEYS": f"bench:{self.token}:admin",
               "DEALS_RATE_LIMIT_PER_S": "0", "DEALS_REDIS_PREFIX": redis_prefix(schema)}
        if self.o.redis_url:
            env["DEALS_REDIS_URL"] = self.o.redis_url
        return env

    def service(self) -> None:
        with fresh_schema(self.o.database_url, self.o.redis_url) as schema:
            self.say("starting deals-ledger serve (projections and settlement on, LiteSVM)")
            env = {k: v for k, v in os.environ.items()
                   if k not in ("DEALS_SETTLEMENT", "DEALS_PROJECTIONS", "DEALS_SOLANA_RPC_URL")}
            server = ledger_server(self._env(schema), self.work_dir / "serve.log")
            server.env = {**env, **self._env(schema)}
            with server, SettlementWatch(self.o.database_url, schema, EVENTS_TABLE) as watch:
                self._steps(server, watch)
            self.results.chain_cost = self._chain_cost(Path(self._env(schema)["DEALS_DATA_DIR"]))

    @staticmethod
    def _chain_cost(data_dir: Path) -> str:
        """Read from the stopped service's embedded chain (the settler holds
        it while running)."""
        from benchmarks.chain_cost import settlement_cost
        from interface.chain.embedded import EmbeddedSolana
        from interface.wiring.settings import Settings
        from interface.wiring.settler import EMBEDDED_CHAIN_DIR, custody_keys

        fee_payer = custody_keys(Settings(data_dir=data_dir)).fee_payer
        chain = EmbeddedSolana(data_dir / EMBEDDED_CHAIN_DIR)
        try:
            return settlement_cost(chain, fee_payer).describe()
        finally:
            chain.close()

    def _steps(self, server: ServerProcess, watch: SettlementWatch) -> None:
        target = load.Target(server.host, server.port, self.token)
        accounts = self._fund(target, watch)
        for kind in ("transfers", "fees"):
            self.say(f"wrk POST /v1/{kind}, {self.o.connections} connections, {self.o.seconds:g} s")
            self.results.loads[kind] = self._wrk(target, kind, accounts, self.run_wrk)
        self._settle_after(watch)
        assert server.process is not None
        self._fixed(target, accounts, server.process.pid, watch)
        self._sustained(target, accounts, watch)
        self.say(f"wrk POST /v1/transfers/batch, {self.o.batch_items} a request, "
                 f"{self.o.batch_in_flight} in flight")
        batch_run = WrkRun(self.o.threads, self.o.batch_in_flight, self.o.seconds)
        self.results.loads["batch"] = self._wrk(target, "batch", accounts, batch_run)
        self.results.rss_bytes = rss_bytes(process_tree(server.process.pid))

    def _fund(self, target: load.Target, watch: SettlementWatch) -> tuple[str, ...]:
        n = self.o.accounts
        self.say(f"opening and funding {n:,} accounts")
        accounts = tuple(str(uuid.uuid4()) for _ in range(n))
        opens = [("/v1/accounts", {"account_id": a, "kind": "user"}) for a in accounts]
        started = time.monotonic()
        mints = [("/v1/mint", {"transfer_id": str(uuid.uuid4()), "to": a, "amount": "100000"})
                 for a in accounts]
        for batch in (opens, mints):
            refused = asyncio.run(load.post_each(target, batch, connections=32))
            if refused:
                raise RuntimeError(f"funding refused: {refused[:3]}")
        head = watch.head()
        funded, done_before = time.monotonic(), self._settled_count(watch)
        self.say("settling the mints (settlement alone)")
        settled_at = watch.wait_settled(head, self.o.settle_timeout_s)
        if settled_at is not None:
            made, _ = watch.movements_between(0, head)
            remaining = made - done_before
            # from the end of funding when a backlog was left, else from its start
            span, count = ((settled_at - funded, remaining) if remaining > 0
                           else (settled_at - started, made))
            self.results.alone = (count, span)
        return accounts

    @staticmethod
    def _settled_count(watch: SettlementWatch) -> int:
        latest = watch.latest()
        return latest.settled if latest else 0

    def _script(self, kind: str, accounts: tuple[str, ...]) -> Path:
        path = self.work_dir / f"{kind}-{uuid.uuid4().hex[:6]}.lua"
        path.write_text(lua_script(kind, accounts, self.token, batch_items=self.o.batch_items,
                                   seed=random.randrange(1, 10**6)))  # noqa: S311
        path.chmod(0o600)
        return path

    def _wrk(self, target: load.Target, kind: str, accounts: tuple[str, ...],
             run: WrkRun) -> Loaded:
        script = self._script(kind, accounts)
        items = self.o.batch_items if kind == "batch" else 1
        url = f"http://{target.host}:{target.port}"

        async def both() -> Loaded:
            finished = False
            probe = asyncio.create_task(load.sample_read_lag(
                target, (accounts[0], accounts[1]), lambda: finished))
            started = time.monotonic()
            result = await run_wrk(url, script, run, items)
            ended = time.monotonic()
            finished = True
            return Loaded(result, await probe, started, ended)

        return asyncio.run(both())

    def _settle_after(self, watch: SettlementWatch) -> None:
        transfers, fees = self.results.loads["transfers"], self.results.loads["fees"]
        self.say("waiting for the last movement of the two loads to settle")
        upto = watch.head()
        before = _position_at(watch, transfers.started)
        settled_at = watch.wait_settled(upto, self.o.settle_timeout_s) or time.monotonic()
        made, done = watch.movements_between(before, upto)
        self.results.settled = Settled(
            made, fees.ended - transfers.started, settled_at - fees.ended, made - done,
            watch.backlog_max(transfers.started, fees.ended),
            watch.fold_lag_max(transfers.started, fees.ended))

    def _fixed(self, target: load.Target, accounts: tuple[str, ...], serve_pid: int,
               watch: SettlementWatch) -> None:
        rate = self.o.fixed_rate
        self.say(f"CPU per transfer at a fixed {rate:g} req/s for {self.o.seconds:g} s")
        meter = CpuMeter(serve_pid, self.o.database_url)

        async def run() -> Fixed:
            finished = False
            probe = asyncio.create_task(load.sample_read_lag(
                target, (accounts[0], accounts[1]), lambda: finished))
            before = meter.sample()
            started = time.monotonic()
            ok = await fixed_rate(target, load.Transfers(accounts=accounts), rate,
                                  self.o.seconds, self.o.connections)
            seconds = time.monotonic() - started
            after = meter.sample()
            finished = True
            latest = watch.latest()
            return Fixed(rate, ok, seconds, CpuMeter.spent(before, after), await probe,
                         latest.pending if latest else 0)

        self.results.fixed = asyncio.run(run())

    def _sustained(self, target: load.Target, accounts: tuple[str, ...],
                   watch: SettlementWatch) -> None:
        """The fixed-rate sender at the transfers load's own rate for
        ``sustained_s``: does the settlement backlog stay bounded?"""
        rate = self.results.loads["transfers"].result.per_s
        if self.o.sustained_s <= 0 or rate <= 0:
            return
        self.say(f"sustained load: {rate:,.0f} transfers/s (the transfers load's rate) for "
                 f"{self.o.sustained_s:g} s")
        started = time.monotonic()
        ok = asyncio.run(fixed_rate(target, load.Transfers(accounts=accounts), rate,
                                    self.o.sustained_s, self.o.connections))
        ended = time.monotonic()
        half = started + (ended - started) / 2
        self.results.sustained = Sustained(
            rate, ok, ended - started, watch.backlog_max(started, ended),
            _pending_at(watch, half), _pending_at(watch, ended))

    # --- the baselines -------------------------------------------------------------

    def bare(self) -> None:
        self.say("bare FastAPI endpoint, same wrk transfers script")
        accounts = tuple(str(uuid.uuid4()) for _ in range(self.o.accounts))
        with bare_server(self.work_dir / "bare.log") as server:
            url = f"http://{server.host}:{server.port}"
            self.results.bare = asyncio.run(run_wrk(url, self._script("transfers", accounts),
                                                    self.run_wrk))

    def pgledger(self) -> None:
        checkout, why = (self.o.pgledger, "") if self.o.pgledger else peer.fetch_checkout(
            self.work_dir / "pgledger")
        files = peer.sql_files(checkout) if checkout else None
        if files is None:
            self.results.peer_missing = why or f"no pgledger files under {checkout}"
            self.say(f"pgledger: {peer_note(self.results.peer_missing)}")
            return
        self.say(f"pgledger from {checkout}: pgbench, {self.o.connections} clients")
        with peer.fresh_database(self.o.database_url) as url:
            peer.load(url, files, self.o.accounts)
            for kind in ("uniform", "hot"):
                script = self.work_dir / f"pgledger-{kind}.sql"
                script.write_text(peer.pgbench_script(kind, self.o.accounts))
                self.results.peers[kind] = peer.run_pgbench(
                    url, script, kind, clients=self.o.connections, threads=self.o.threads,
                    seconds=self.o.seconds)

    def replay(self) -> None:
        from benchmarks.replay_bench import replay_figures

        if self.o.replay_events <= 0:
            return
        self.say(f"audit replay of {self.o.replay_events:,} events (scenario 5)")
        with fresh_schema(self.o.database_url, self.o.redis_url) as schema:
            self.results.replay = replay_figures(self.o.database_url, schema,
                                                 self.o.replay_events, self.say)


def peer_note(missing: str) -> str:
    return f"not reported ({missing})"


def _pending_at(watch: SettlementWatch, moment: float) -> int:
    """Movements pending at the last sample taken before ``moment``."""
    before = [s.pending for s in watch.samples if s.at <= moment]
    return before[-1] if before else 0


def _position_at(watch: SettlementWatch, moment: float) -> int:
    """The log's head at the last sample taken before ``moment``."""
    before = [s.head for s in watch.samples if s.at <= moment]
    return before[-1] if before else 0


async def fixed_rate(target: load.Target, workload: load.Workload, rate: float, seconds: float,
                     connections: int) -> int:
    """Open loop: a request every 1/``rate`` s for ``seconds`` on a pool of
    ``connections`` keep-alive connections, whatever the answers' pace (a
    send waits only when every connection is busy). Answers accepted."""
    pool: asyncio.Queue[load.Connection] = asyncio.Queue()
    opened = [await load.Connection(target).open() for _ in range(connections)]
    for connection in opened:
        pool.put_nowait(connection)
    rng = random.Random(5)  # noqa: S311 - load, not secrets
    accepted = [0]

    async def send(body: bytes) -> None:
        connection = await pool.get()
        try:
            status, _ = await connection.request("POST", workload.path, body)
            accepted[0] += status in workload.expected
        finally:
            pool.put_nowait(connection)

    tasks = []
    started = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(workload.body(rng))))
    await asyncio.gather(*tasks)
    for connection in opened:
        await connection.close()
    return accepted[0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deals-ledger bench deployed",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server (default DEALS_BENCH_DATABASE_URL, "
                             f"DEALS_DATABASE_URL, else {BENCH_DATABASE_URL_DEFAULT})")
    parser.add_argument("--redis-url", default=None, help="Redis (default DEALS_REDIS_URL)")
    parser.add_argument("--pgledger", type=Path, default=None, metavar="DIR",
                        help="a pgledger checkout (default: git clone it into a temporary folder; "
                             "without its files the pgledger ratios are not reported)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each load's duration")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--fixed-rate", type=float, default=200.0,
                        help="offered transfers/s for the CPU time per transfer")
    parser.add_argument("--sustained-seconds", type=float, default=60.0,
                        help="a load at the transfers' own rate this long, for the settlement "
                             "backlog (0: skip it)")
    parser.add_argument("--replay-events", type=int, default=1_000_000,
                        help="log size of the audit replay (0: skip it)")
    parser.add_argument("--settle-timeout", type=float, default=600.0,
                        help="longest wait for the settlement backlog to drain, s")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the deployed benchmark and print its two Markdown tables."""
    args = build_parser().parse_args(argv)
    url = (args.database_url or os.environ.get("DEALS_BENCH_DATABASE_URL")
           or os.environ.get("DEALS_DATABASE_URL") or BENCH_DATABASE_URL_DEFAULT)
    options = Options(url, args.redis_url or os.environ.get("DEALS_REDIS_URL"),
                      args.pgledger, args.accounts, args.seconds, fixed_rate=args.fixed_rate,
                      replay_events=args.replay_events, settle_timeout_s=args.settle_timeout,
                      sustained_s=args.sustained_seconds)
    print(f"machine: {machine_note()}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ensure_wrk()
    work_dir = Path(tempfile.mkdtemp(prefix="deals-deployed-"))
    try:
        bench = Deployed(options, work_dir)
        bench.service()
        bench.bare()
        bench.pgledger()
        bench.replay()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(render(bench.results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
