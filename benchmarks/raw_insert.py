"""The raw PostgreSQL append limit (baseline of scenario 3): multi-row
INSERTs of event rows into a table shaped like the event store, from
several connections at once, with no application in between.

Each request of the ledger's batch scenario becomes one transaction here
holding the same number of rows (transfers x events per transfer) with
states of the same average size, so the two figures count the same work.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import psycopg
from psycopg import sql

TABLE = "raw_event_baseline"
ROWS_PER_STATEMENT = 1000  # 4 parameters a row stays well under PostgreSQL's 65,535


def create_table(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "CREATE TABLE {}.{} (notification_id bigserial PRIMARY KEY, originator_id uuid NOT NULL,"
            " originator_version bigint NOT NULL, topic text NOT NULL, state bytea,"
            " UNIQUE (originator_id, originator_version))"
        ).format(sql.Identifier(schema), sql.Identifier(TABLE)))


def _insert_transaction(conn: psycopg.Connection, schema: str, rows: int, state_bytes: int) -> None:
    state = os.urandom(state_bytes)
    with conn.transaction(), conn.cursor() as cur:
        for start in range(0, rows, ROWS_PER_STATEMENT):
            count = min(ROWS_PER_STATEMENT, rows - start)
            values = sql.SQL(",").join([sql.SQL("(%s, %s, %s, %s)")] * count)
            params: list[object] = []
            for _ in range(count):
                params += [uuid.uuid4(), 1, "bench.Event", state]
            cur.execute(sql.SQL("INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
                                "VALUES ").format(sql.Identifier(schema), sql.Identifier(TABLE))
                        + values, params)


def appends_per_second(url: str, schema: str, *, transactions: int, rows_per_transaction: int,
                       state_bytes: int, connections: int) -> tuple[float, list[float]]:
    """Transactions per second over ``connections`` connections, and each
    transaction's latency in seconds."""
    create_table(url, schema)
    latencies: list[float] = []
    counter = iter(range(transactions))
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(url) as conn:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                started = time.perf_counter()
                _insert_transaction(conn, schema, rows_per_transaction, state_bytes)
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return transactions / (time.perf_counter() - started), latencies
