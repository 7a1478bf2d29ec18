"""Shared by the benchmarks: a fresh PostgreSQL schema, and a ledger filled
with real events through the command writer (TransferBatch commands of 8,000
transfers, several per group commit), so the log is what production writes."""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from application import commands as c
from application.authority import INTERNAL
from application.eventlog.seals import SealKey, SealKeys, seals_for_commit
from application.write.aggregate_cache import AggregateCache
from application.write.event_store import LedgerApplication
from application.write.processor import CommandProcessor, utc_now
from application.write.sealing import sealed_events
from application.write.writer import CommandWriter
from domain.movements import TRANSFER, move
from domain.transfer import Transfer
from interface.wiring.settings import Settings

BENCH_DATABASE_URL_DEFAULT = os.environ.get(
    "DEALS_BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres")
BENCH_SEAL_KEYS = SealKeys([SealKey("bench", bytes(range(32)))])
"""Commit seals are on in every process of the service; a benchmark of
what it runs seals too (a key of the benchmark's own)."""
COMMIT_TRANSFERS = 32


def machine_note() -> str:
    cpus = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {cpus} cores, {memory_gib:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


@contextmanager
def fresh_schema(url: str, keep: bool = False) -> Iterator[Settings]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Settings(data_dir=Path("/tmp/deals-bench"), database_url=url, postgres_schema=schema)
    finally:
        if not keep:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        else:
            print(f"kept schema {schema}")


class Filler:
    """Writes transfers among ``accounts`` funded accounts until the log
    holds ``events`` events."""

    def __init__(self, settings: Settings, accounts: int = 1000,
                 seal_keys: SealKeys | None = None, batch_commands_max: int = 4) -> None:
        self.app = LedgerApplication(settings.eventsourcing_env())
        if seal_keys is not None:  # as every process of the service does (commit seals)
            self.app.use_seal_keys(seal_keys)
        self.processor = CommandProcessor(self.app, cache=AggregateCache(accounts * 4))
        self.writer = CommandWriter(self.processor, batch_commands_max=batch_commands_max).start()
        self.writer.execute(c.Genesis(), authority=INTERNAL)
        self.accounts = [uuid4() for _ in range(accounts)]
        for future in [self.writer.send(c.OpenAccount(a), authority=INTERNAL) for a in self.accounts]:
            future.result(60)
        mints = [c.Mint(uuid4(), a, 10**12) for a in self.accounts]
        for future in [self.writer.send(mint, authority=INTERNAL) for mint in mints]:
            future.result(60)

    def fill(self, events: int, *, per_batch: int = 8000, in_flight: int = 4) -> float:
        started = time.perf_counter()
        n = len(self.accounts)
        counter = 0
        while self.app.event_log.head() < events:
            futures = []
            for _ in range(in_flight):
                items = []
                for _ in range(per_batch):
                    counter += 1
                    source = self.accounts[counter % n]
                    destination = self.accounts[(counter * 7 + 1) % n]
                    if source == destination:
                        destination = self.accounts[(counter + 1) % n]
                    items.append(c.TransferFunds(uuid4(), source, destination, 1, "bench"))
                futures.append(self.writer.send(c.TransferBatch(tuple(items)), authority=INTERNAL))
            for future in futures:
                future.result(600)
        return time.perf_counter() - started

    def fill_direct(self, events: int, *, per_save: int = 5000) -> float:
        """The same events the writer would store (the domain's own ``move``
        and ``Transfer.record``), saved ``per_save`` transfers per
        transaction without the writer's per-command bookkeeping: 5-10x
        faster, for building big logs. The writer is stopped first, as its
        cached aggregates would go stale. The log looks as group commits of
        ``COMMIT_TRANSFERS`` transfers (the HTTP load's connections) would
        leave it: each its own stamp, its events together, and with seal
        keys its own seal."""
        self.writer.stop()
        accounts = {a: self.app.account(a) for a in self.accounts}
        started = time.perf_counter()
        ids, n, counter = self.accounts, len(self.accounts), 0
        while self.app.event_log.head() < events:
            commits = []
            for _ in range(max(1, per_save // COMMIT_TRANSFERS)):
                touched: dict = {}
                transfers = []
                now = utc_now()
                for _ in range(COMMIT_TRANSFERS):
                    counter += 1
                    source = accounts[ids[counter % n]]
                    destination = accounts[ids[(counter * 7 + 1) % n]]
                    if source is destination:
                        destination = accounts[ids[(counter + 1) % n]]
                    transfers.append(_transfer(source, destination, now))
                    touched[source.id], touched[destination.id] = source, destination
                commits.append([self.app.mapper.to_stored_event(event)
                                for aggregate in [*touched.values(), *transfers]
                                for event in aggregate.collect_events()])
            self._copy(commits)
        return time.perf_counter() - started

    def _copy(self, commits: list[list[Any]]) -> None:
        """Store the commits' stored events with COPY, in order: byte for
        byte what ``app.save`` stores. (The recorder's insert dumps each
        event through a Python composite-array adapter, ~60 us per event;
        fine for a command, slow for 1M events.)"""
        from psycopg.sql import SQL, Identifier

        recorder: Any = self.app.recorder  # the PostgreSQL recorder: COPY needs its table
        table = SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                    Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
            with cur.copy(SQL("COPY {} (originator_id, originator_version, topic, state) "
                              "FROM STDIN").format(table)) as copy:
                for event in (event for commit in commits for event in commit):
                    copy.write_row((event.originator_id, event.originator_version, event.topic,
                                    event.state))
            if recorder.seal_keys is not None:
                self._seal(recorder, cur, table, commits)

    @staticmethod
    def _seal(recorder: Any, cur: Any, table: Any, commits: list[list[Any]]) -> None:
        """Seal each COPYed commit in the same transaction, chained from the
        log's last seal, as the recorder seals a commit."""
        from psycopg.sql import SQL

        total = sum(len(commit) for commit in commits)
        cur.execute(SQL("SELECT notification_id FROM {} ORDER BY notification_id DESC LIMIT %s")
                    .format(table), (total,))
        positions = sorted(row["notification_id"] for row in cur.fetchall())
        previous = recorder._last_seal(cur)
        for commit in commits:
            mine, positions = positions[:len(commit)], positions[len(commit):]
            head_before = previous.last if previous is not None else mine[0] - 1
            rows = seals_for_commit(recorder.seal_keys, previous, head_before,
                                    sealed_events(commit, mine))
            recorder._insert_seals(cur, rows)
            previous = rows[-1]

    def close(self) -> None:
        self.writer.stop()
        self.app.close()


def _transfer(source: Any, destination: Any, now: Any) -> Transfer:
    """One transfer of 1 unit, through the domain (``move``, ``Transfer.record``)."""
    transfer_id = uuid4()
    posting = move(source, destination, transfer_id=transfer_id, amount=1, kind=TRANSFER,
                   reason="bench", now=now)
    return Transfer.record(
        transfer_id, kind=TRANSFER, source=source.id, destination=destination.id, amount=1,
        reason="bench", fingerprint="bench", source_balance_after=posting.source_balance_after,
        destination_balance_after=posting.destination_balance_after, now=now,
    )

