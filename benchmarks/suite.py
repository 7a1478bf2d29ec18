"""``deals-ledger bench``: the seven scenarios of the performance issue and
issue 13's two fairness scenarios, each
next to a baseline measured in the same run, as ratios.

  1 HTTP transfers, 32 connections, 1,000 funded accounts, PostgreSQL + Redis;
    baseline: a bare FastAPI endpoint validating the same body, same client
  2 HTTP fees, all into the one treasury; baseline: scenario 1
  3 batch endpoint, 1,000 transfers a request, 4 in flight; baseline: raw
    PostgreSQL multi-row INSERTs of the same event rows
  4 one transaction per command (DEALS_MAX_BATCH_COMMANDS=1); baseline: 1
  5 audit replay of the log (1,000,000 events) from PostgreSQL, events/s,
    baseline a raw SELECT of the same rows; projection lag p99 during 1
  6 settlement on LiteSVM, movements/s; baseline: one movement a transaction
  7 server RSS after opening 1,000,000 accounts and running the above
  8 fairness (issue 13): other callers' HTTP transfers while one write key
    sends a 6,000-item batch and then 50 atomic batches with one refused
    item each, round after round; baseline: the same transfers, no attack
  9 fairness across processes (issue 13): the same attack sent to one of two
    ``serve`` processes on one schema, other callers' transfers to the other;
    baseline: the same transfers, no attack

The servers are real ``deals-ledger serve`` subprocesses (settlement off, as
scenario 6 measures it alone; rate limits off, as the load is one key). Every
store is a fresh PostgreSQL schema, dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from application.write.event_store import LedgerApplication
from benchmarks import http_load as load
from benchmarks.report import Figure, ProgressBar
from benchmarks.servers import ServerProcess, bare_server, ledger_server

ALL_SCENARIOS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
EVENTS_TABLE = f"{LedgerApplication.name.lower()}_events"
MiB = 2**20


@dataclass(frozen=True)
class Sizes:
    accounts: int = 1000
    connections: int = 32
    load_seconds: float = 15.0
    batch_requests: int = 40
    batch_items: int = 1000
    batch_in_flight: int = 4
    replay_events: int = 1_000_000
    settle_movements: int = 1000
    open_accounts: int = 1_000_000
    open_connections: int = 64
    victim_connections: int = 8
    attack_big_items: int = 6000
    attack_bad_batches: int = 50
    across_big_batches: int = 8
    """Scenario 9: large batches in flight at once (one writer group held
    all of them before batches were committed in chunks)."""


QUICK = Sizes(accounts=50, load_seconds=1.5, batch_requests=4, batch_items=100,
              replay_events=3000, settle_movements=12, open_accounts=300,
              victim_connections=4, attack_big_items=600, attack_bad_batches=35,
              across_big_batches=2)
"""Small enough for a smoke test; the figures mean nothing at this size."""


@dataclass
class BenchConfig:
    database_url: str
    redis_url: str | None
    scenarios: tuple[int, ...] = ALL_SCENARIOS
    sizes: Sizes = field(default_factory=Sizes)


def redis_prefix(schema: str) -> str:
    """The Redis prefix of the server run on ``schema``."""
    return f"deals-{schema}:"


@contextmanager
def fresh_schema(url: str, redis_url: str | None = None) -> Iterator[str]:
    """A new schema for one server, dropped at the end with its Redis keys
    (a run leaves nothing behind in either store)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        if redis_url:
            _drop_redis_keys(redis_url, redis_prefix(schema))


def _drop_redis_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class Suite:
    def __init__(self, config: BenchConfig, progress: ProgressBar) -> None:
        self.config = config
        self.sizes = config.sizes
        self.progress = progress
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self.token = secrets.token_urlsafe(24)
        self.work_dir = Path(tempfile.mkdtemp(prefix="deals-bench-"))
        self.transfers_s1: load.LoadResult | None = None
        self.lags_s: list[float] = []
        self.reads: list[load.LoadResult] = []
        self.round_trips_s: list[float] = []

    @staticmethod
    def steps_for(scenarios: tuple[int, ...]) -> int:
        """Progress steps: server start, funding and scenario 1's load when any
        scenario needs the shared server, then each scenario's own."""
        own = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 2, 7: 1, 8: 5, 9: 4}
        shared = 3 if {1, 2, 3, 4, 5, 7} & set(scenarios) else 0
        return shared + sum(own[n] for n in scenarios)

    def run(self) -> list[Figure]:
        chosen = set(self.config.scenarios)
        try:
            if chosen & {1, 2, 3, 4, 5, 7}:
                self._shared_server_scenarios(chosen)
            if 1 in chosen:
                self._bare_baseline()
            if 4 in chosen:
                self._one_transaction_per_command()
            if 5 in chosen:
                self._replay()
            if 6 in chosen:
                self._settlement()
            if 8 in chosen:
                self._write_attack()
            if 9 in chosen:
                self._write_attack_across_processes()
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.figures.sort(key=lambda f: f.scenario)
        return self.figures

    # --- servers -----------------------------------------------------------

    def _server_env(self, schema: str, **extra: str) -> dict[str, str]:
        data_dir = self.work_dir / schema
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "DEALS_DATABASE_URL": self.config.database_url, "DEALS_POSTGRES_SCHEMA": schema,
            "DEALS_DATA_DIR": str(data_dir), "DEALS_API_KEYS": f"bench:{self.token}:admin",
            "DEALS_SETTLEMENT": "off", "DEALS_RATE_LIMIT_PER_S": "0",
            "DEALS_REDIS_PREFIX": redis_prefix(schema),
        }
        if self.config.redis_url:
            env["DEALS_REDIS_URL"] = self.config.redis_url
        return env | extra

    def _target(self, server: ServerProcess) -> load.Target:
        return load.Target(server.host, server.port, self.token)

    def _fund(self, target: load.Target) -> tuple[str, ...]:
        """Open and fund the accounts the transfers move between."""
        self.progress.step(f"opening and funding {self.sizes.accounts:,} accounts")
        accounts = tuple(str(uuid.uuid4()) for _ in range(self.sizes.accounts))
        opens = [("/v1/accounts", {"account_id": a, "kind": "user"}) for a in accounts]
        mints = [("/v1/mint", {"transfer_id": str(uuid.uuid4()), "to": a, "amount": "100000"})
                 for a in accounts]
        for batch in (opens, mints):
            refused = asyncio.run(load.post_each(target, batch, connections=32))
            if refused:
                raise RuntimeError(f"funding refused: {refused[:3]}")
        return accounts

    # --- scenarios 1, 2, 3, 5 (lag) and 7 share one group-commit server ------

    def _shared_server_scenarios(self, chosen: set[int]) -> None:
        with fresh_schema(self.config.database_url, self.config.redis_url) as schema:
            self.progress.step("starting deals-ledger serve (group commit)")
            server = ledger_server(self._server_env(schema), self.work_dir / "ledger.log")
            with server:
                target = self._target(server)
                accounts = self._fund(target)
                self.transfers_s1 = self._transfers_with_lag_probe(target, accounts, 5 in chosen,
                                                                   schema)
                if 2 in chosen:
                    self._fees(target, accounts)
                if 3 in chosen:
                    self._batches(target, accounts, schema)
                if 7 in chosen:
                    self._memory(target, server)

    def _transfers_with_lag_probe(self, target: load.Target, accounts: tuple[str, ...],
                                  probe: bool, schema: str) -> load.LoadResult:
        """Scenario 1's load, with beside it (when scenario 5 is chosen) the
        projection-lag probe, balance reads consistent (the default) and
        eventual on a few connections each, and the store's round trip."""
        self.progress.step("scenario 1: HTTP transfers (and balance reads beside them)")
        workload = load.Transfers(accounts=accounts)
        balance = f"/v1/accounts/{accounts[2]}/balance"

        async def run() -> tuple[load.LoadResult, list[float], list[load.LoadResult]]:
            finished = False
            side = []
            if probe:
                side = [asyncio.create_task(load.sample_read_lag(
                    target, (accounts[0], accounts[1]), lambda: finished))] + [
                    asyncio.create_task(load.read_while(
                        target, f"{balance}?consistency={mode}", lambda: finished,
                        connections=READ_CONNECTIONS)) for mode in ("strong", "eventual")]
            result = await load.drive(target, workload, connections=self.sizes.connections,
                                      seconds=self.sizes.load_seconds)
            finished = True
            done = [await task for task in side]
            return result, (done[0] if done else []), done[1:]

        with RoundTrips(self.config.database_url, schema) as round_trips:
            result, self.lags_s, self.reads = asyncio.run(run())
        self.round_trips_s = round_trips.samples_s
        return result

    def _fees(self, target: load.Target, accounts: tuple[str, ...]) -> None:
        self.progress.step("scenario 2: HTTP fees into the treasury")
        fees = asyncio.run(load.drive(target, load.Fees(accounts=accounts),
                                      connections=self.sizes.connections,
                                      seconds=self.sizes.load_seconds))
        assert self.transfers_s1 is not None
        ratio = fees.per_s / max(self.transfers_s1.per_s, 1e-9)
        self.figures.append(Figure(
            2, "HTTP fees, all into the one treasury", fees.per_s, "req/s",
            "scenario 1 (transfers)", self.transfers_s1.per_s, fees.percentile_ms(0.5),
            fees.percentile_ms(0.99), ">= 0.9", ratio >= 0.9, _refusals(fees),
        ))

    def _batches(self, target: load.Target, accounts: tuple[str, ...], schema: str) -> None:
        from benchmarks.raw_insert import appends_per_second

        self.progress.step("scenario 3: batch endpoint")
        s = self.sizes
        before = _event_stats(self.config.database_url, schema)
        workload = load.TransferBatches(accounts=accounts, items_per_request=s.batch_items)
        result = asyncio.run(load.drive(target, workload, connections=s.batch_in_flight,
                                        seconds=3600, requests=s.batch_requests))
        after = _event_stats(self.config.database_url, schema)
        events = after[0] - before[0]
        per_transfer = events / max(result.ok * s.batch_items, 1)
        state_bytes = int((after[1] * after[0] - before[1] * before[0]) / max(events, 1))
        self.progress.step("scenario 3: raw PostgreSQL INSERT baseline")
        raw_tps, raw_latencies = appends_per_second(
            self.config.database_url, schema, transactions=s.batch_requests,
            rows_per_transaction=round(per_transfer * s.batch_items), state_bytes=state_bytes,
            connections=s.batch_in_flight)
        raw_latencies.sort()
        raw_p99 = 1000 * raw_latencies[min(len(raw_latencies) - 1, int(0.99 * len(raw_latencies)))]
        self.figures.append(Figure(
            3, f"batch endpoint, {s.batch_items:,} a request, {s.batch_in_flight} in flight",
            result.per_s, "tr/s", "raw PG multi-row INSERT", raw_tps * s.batch_items,
            result.percentile_ms(0.5), result.percentile_ms(0.99), ">= 0.4",
            result.per_s >= 0.4 * raw_tps * s.batch_items,
            f"{per_transfer:.2f} events a transfer, states of {state_bytes} bytes; raw p99 "
            f"{raw_p99:,.0f} ms a transaction. {_refusals(result)}".strip(),
        ))

    def _memory(self, target: load.Target, server: ServerProcess) -> None:
        count = self.sizes.open_accounts
        self.progress.step(f"scenario 7: opening {count:,} accounts")
        rss_before = server.rss_bytes()
        result = asyncio.run(load.drive(target, load.OpenAccounts(), seconds=24 * 3600,
                                        connections=self.sizes.open_connections, requests=count))
        rss = server.rss_bytes()
        self.figures.append(Figure(
            7, f"server RSS after {result.ok:,} more accounts", rss / MiB, "MiB",
            "RSS before opening them", rss_before / MiB, None, None, "<= 500 MiB",
            rss <= 500 * MiB,
            f"opened at {result.per_s:,.0f} accounts/s (p99 {result.percentile_ms(0.99):,.0f} ms). "
            f"{_refusals(result)}".strip(),
        ))

    # --- scenario 1's baseline ----------------------------------------------

    def _bare_baseline(self) -> None:
        self.progress.step("scenario 1 baseline: bare FastAPI endpoint, 1 and 2 client processes")
        assert self.transfers_s1 is not None
        s = self.sizes
        with bare_server(self.work_dir / "bare.log") as server:
            target = load.Target(server.host, server.port)
            workload = load.Transfers(accounts=tuple(str(uuid.uuid4()) for _ in range(s.accounts)))
            one = asyncio.run(load.drive(target, workload, connections=s.connections,
                                         seconds=s.load_seconds))
            two = load.drive_processes(target, workload, processes=2, connections=s.connections,
                                       seconds=s.load_seconds)
        s1 = self.transfers_s1
        self.figures.append(Figure(
            1, f"HTTP transfers, {s.connections} connections, PG+Redis", s1.per_s, "req/s",
            "bare FastAPI endpoint", one.per_s, s1.percentile_ms(0.5), s1.percentile_ms(0.99),
            ">= 0.5, p99 <= 25 ms", s1.per_s >= 0.5 * one.per_s and s1.percentile_ms(0.99) <= 25,
            f"client check: the bare endpoint from 2 client processes {two.per_s:,.0f} req/s = "
            f"{two.per_s / max(one.per_s, 1e-9):.2f}x one process (bare p50 "
            f"{one.percentile_ms(0.5):.1f} ms, p99 {one.percentile_ms(0.99):.1f} ms). "
            f"{_refusals(s1)}".strip(),
        ))

    # --- scenario 4: group commit off ----------------------------------------

    def _one_transaction_per_command(self) -> None:
        assert self.transfers_s1 is not None
        with fresh_schema(self.config.database_url, self.config.redis_url) as schema:
            self.progress.step("scenario 4: starting a server with group commit off")
            env = self._server_env(schema, DEALS_MAX_BATCH_COMMANDS="1")
            with ledger_server(env, self.work_dir / "ledger-single.log") as server:
                target = self._target(server)
                accounts = self._fund(target)
                result = asyncio.run(load.drive(target, load.Transfers(accounts=accounts),
                                                connections=self.sizes.connections,
                                                seconds=self.sizes.load_seconds))
        self.figures.append(Figure(
            4, "HTTP transfers, one transaction a command", result.per_s, "req/s",
            "scenario 1 (group commit)", self.transfers_s1.per_s, result.percentile_ms(0.5),
            result.percentile_ms(0.99), "(what group commit buys: 1/ratio)", None,
            _refusals(result),
        ))

    # --- scenario 5: replay, and the lag sampled during scenario 1 ------------

    def _replay(self) -> None:
        from benchmarks.replay_bench import replay_figures

        self.progress.step(f"scenario 5: writing a log of {self.sizes.replay_events:,} events")
        with fresh_schema(self.config.database_url, self.config.redis_url) as schema:
            rates = replay_figures(self.config.database_url, schema, self.sizes.replay_events,
                                   lambda stage: self.progress.step(f"scenario 5: {stage}"))
        events, audit_rate, fold_rate, raw_rate = rates
        self.figures.append(Figure(
            5, f"audit replay of {events:,} events (PostgreSQL)", audit_rate, "ev/s",
            "raw keyset SELECT of the rows", raw_rate, None, None, ">= 100,000 ev/s",
            audit_rate >= 100_000,
            f"the replay's fold alone (decode + fold + hash chain, no read-model compare): "
            f"{fold_rate:,.0f} ev/s",
        ))
        lags = sorted(self.lags_s)
        if lags:
            p50, p99 = (lags[min(len(lags) - 1, int(q * len(lags)))] for q in (0.5, 0.99))
            self.figures.append(Figure(
                5, "projection lag during scenario 1", p99, "s (p99)", "", None, 1000 * p50,
                1000 * p99, "p99 <= 1 s", p99 <= 1.0,
                f"{len(lags)} probes: a transfer's answer -> its position readable",
                digits=3,
            ))
        self._consistent_reads(lags)

    def _consistent_reads(self, lags: list[float]) -> None:
        """The cost of consistent reads: balance reads during scenario 1,
        default vs eventual, against the budget of the lag's p99 plus one
        round trip to the store."""
        if len(self.reads) != 2 or not all(r.latencies_s for r in self.reads):
            return
        strong, eventual = self.reads
        trips = sorted(self.round_trips_s) or [0.0]
        trip_p99 = trips[min(len(trips) - 1, int(0.99 * len(trips)))]
        lag_p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else 0.0
        added_ms = strong.percentile_ms(0.99) - eventual.percentile_ms(0.99)
        budget_ms = 1000 * (lag_p99 + trip_p99)
        self.figures.append(Figure(
            5, "balance reads during scenario 1, consistency=eventual", eventual.per_s, "req/s",
            "", None, eventual.percentile_ms(0.5), eventual.percentile_ms(0.99), "", None,
            _refusals(eventual),
        ))
        self.figures.append(Figure(
            5, "balance reads during scenario 1, consistent (the default)", strong.per_s,
            "req/s", "eventual reads, same run", eventual.per_s, strong.percentile_ms(0.5),
            strong.percentile_ms(0.99), "p99 added <= lag p99 + one round trip",
            added_ms <= budget_ms,
            f"p99 added {added_ms:.1f} ms; budget {budget_ms:.1f} ms = lag p99 "
            f"{1000 * lag_p99:.1f} + store round trip p99 {1000 * trip_p99:.1f} "
            f"({len(trips)} samples); {_refusals(strong)}",
        ))

    # --- scenario 6: settlement ---------------------------------------------

    def _settlement(self) -> None:
        from benchmarks.settlement_throughput import scenario as settle_scenario

        n = self.sizes.settle_movements
        accounts = min(50, max(2, n // 4))
        results = {}
        for batch in (1, 2):
            self.progress.step(f"scenario 6: settling {n:,} movements, {batch} per transaction")
            results[batch] = settle_scenario(self.config.database_url, n, accounts, batch)
        self.figures.append(Figure(
            6, "settlement on LiteSVM, 2 movements a tx", results[2]["per_second"], "mv/s",
            "one movement a transaction", results[1]["per_second"], None, None, "", None,
            f"{results[2]['movements']:,} movements in {results[2]['seconds']:.1f} s",
        ))
        self.progress.step(f"scenario 6: settling {n:,} movements, as many as fit a transaction")
        packed = settle_scenario(self.config.database_url, n, accounts, None)
        self.figures.append(Figure(
            6, "lamports in fees per 1,000 settled movements, as many as fit a tx",
            packed["cost"].fees_per_thousand, "lamports", "one movement a transaction",
            results[1]["cost"].fees_per_thousand, None, None, "", None, packed["cost"].describe(),
        ))


    # --- scenario 8: one write key's bad atomic batches, the others' transfers ---

    def _write_attack(self) -> None:
        """The victims' transfers on a fresh server of their own, alone, beside
        the large batches alone, and during the whole attack
        (``benchmarks/write_attack.py``)."""
        from benchmarks.write_attack import Attack, victims_under_attack

        s = self.sizes
        with fresh_schema(self.config.database_url, self.config.redis_url) as schema:
            self.progress.step("scenario 8: starting a server for the write attack")
            with ledger_server(self._server_env(schema), self.work_dir / "attack.log") as server:
                target = self._target(server)
                accounts = self._fund(target)
                attack = Attack(rich=accounts[:4], poor=self._unfunded_account(target),
                                big_items=s.attack_big_items, bad_batches=s.attack_bad_batches)
                self.figures += victims_under_attack(
                    target, accounts[4:], attack, connections=s.victim_connections,
                    seconds=s.load_seconds, step=self.progress.step)

    # --- scenario 9: the same attack on one process, the victims on another ---

    def _write_attack_across_processes(self) -> None:
        """Two servers on one fresh schema: the attack on the first, the
        victims on the second (``benchmarks/cross_process_attack.py``)."""
        from benchmarks.cross_process_attack import victims_on_another_process
        from benchmarks.write_attack import Attack

        s = self.sizes
        with fresh_schema(self.config.database_url, self.config.redis_url) as schema:
            self.progress.step("scenario 9: starting two servers on one schema")
            env = self._server_env(schema)
            with (ledger_server(env, self.work_dir / "attacked.log") as attacked,
                  ledger_server(env, self.work_dir / "other.log") as other):
                target = self._target(attacked)
                accounts = self._fund(target)
                attack = Attack(rich=accounts[:4], poor=self._unfunded_account(target),
                                big_items=s.attack_big_items, big_batches=s.across_big_batches,
                                bad_batches=s.attack_bad_batches)
                self.figures += victims_on_another_process(
                    target, self._target(other), accounts[4:], attack,
                    connections=s.victim_connections, seconds=s.load_seconds,
                    step=self.progress.step)

    def _unfunded_account(self, target: load.Target) -> str:
        account = str(uuid.uuid4())
        refused = asyncio.run(load.post_each(
            target, [("/v1/accounts", {"account_id": account, "kind": "user"})], connections=1))
        if refused:
            raise RuntimeError(f"opening the attacker's empty account refused: {refused}")
        return account


READ_CONNECTIONS = 2
"""Connections per kind of balance read beside scenario 1's load."""


class RoundTrips:
    """Samples, every 50 ms on a connection of its own, what a consistent
    read adds first: one read of the log's head."""

    def __init__(self, url: str, schema: str) -> None:
        self.samples_s: list[float] = []
        self._query = sql.SQL("SELECT MAX(notification_id) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(EVENTS_TABLE))
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RoundTrips:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                conn.execute(self._query)
                self.samples_s.append(time.perf_counter() - started)


def _refusals(result: load.LoadResult) -> str:
    return result.refusals_note()


def _event_stats(url: str, schema: str) -> tuple[int, float]:
    """Rows in the event store and their average state size."""
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*), coalesce(avg(length(state)), 0) FROM {}.{}")
                           .format(sql.Identifier(schema), sql.Identifier(EVENTS_TABLE))).fetchone()
    assert row is not None
    return int(row[0]), float(row[1])


def run_suite(config: BenchConfig) -> list[Figure]:
    progress = ProgressBar(Suite.steps_for(config.scenarios))
    figures = Suite(config, progress).run()
    progress.finish()
    return figures


def figures_json(figures: list[Figure]) -> str:
    return json.dumps([{**f.__dict__, "ratio": f.ratio} for f in figures], indent=2)
