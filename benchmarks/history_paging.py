"""Keyset pages stay fast for one account with 1,000,000 history rows and
1,000,000 transactions, on PostgreSQL: the first, middle and last pages cost
the same (index range scans on (account, position); no OFFSET).

    .venv/bin/python -m benchmarks.history_paging --rows 1000000
"""

from __future__ import annotations

import argparse
import statistics
import time
from uuid import uuid4

from application.eventlog.decoder import EventDecoder
from benchmarks.common import BENCH_DATABASE_URL_DEFAULT, fresh_schema, machine_note
from projections.cursors import encode_cursor
from projections.read_model_store import PostgresReadModelStore, open_store
from projections.read_models import ReadModelQueries


class _NoLog:
    def head(self) -> int:
        return 0


def fill(store: PostgresReadModelStore, account: str, rows: int) -> None:
    other = uuid4().hex
    with store._cursor(commit=True) as cur:
        cur.execute(store.sql("INSERT INTO {balances} VALUES (?, 'user', ?, 0, 0, 0, 0, ?, 0)"),
                    (account, rows, rows))
        with cur.copy(store.sql("COPY {balance_history} FROM STDIN")) as copy:
            for p in range(1, rows + 1):
                copy.write_row((p, account, uuid4().hex, 1, p - 1, p, "transfer", "bench", p))
        with cur.copy(store.sql("COPY {transactions} FROM STDIN")) as copy:
            for p in range(1, rows + 1):
                source, destination = (account, other) if p % 2 else (other, account)
                copy.write_row((uuid4().hex, "transfer", source, destination, 1, "bench",
                                "posted", "pending", "pending", None, None, None, None, None,
                                None, p, p, p, p))
    with store._cursor(commit=True) as cur:
        cur.execute(store.sql("ANALYZE {balance_history}"))
        cur.execute(store.sql("ANALYZE {transactions}"))


def time_page(call, repeats: int = 30) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=BENCH_DATABASE_URL_DEFAULT)
    args = parser.parse_args()
    print(f"machine: {machine_note()}")
    with fresh_schema(args.url) as settings:
        store = open_store(settings.eventsourcing_env())
        account = uuid4()
        started = time.perf_counter()
        fill(store, account.hex, args.rows)  # type: ignore[arg-type]
        print(f"filled {args.rows:,} history rows and {args.rows:,} transactions in "
              f"{time.perf_counter() - started:.0f} s")
        queries = ReadModelQueries(store, _NoLog(), EventDecoder.__new__(EventDecoder))  # type: ignore[arg-type]
        print(f"{'page (limit 100)':<28}{'history ms':>12}{'transactions ms':>17}")
        for label, after in (("first", 0), ("middle", args.rows // 2),
                             ("last", args.rows - 100)):
            history, transactions = ((None, None) if after == 0 else
                                     (encode_cursor("history", account, after),
                                      encode_cursor("transactions", account, after)))
            h = time_page(lambda c=history: queries.history(account, limit=100, cursor=c))
            t = time_page(lambda c=transactions: queries.transactions(account, limit=100,
                                                                      cursor=c))
            print(f"{label + f' (after {after:,})':<28}{h:>12.2f}{t:>17.2f}")
        with store.read() as cur:
            cur.execute(store.sql(
                "EXPLAIN SELECT * FROM {balance_history} WHERE account_id = ? AND position > ? "
                "ORDER BY position LIMIT 101"), (account.hex, args.rows // 2))
            print("plan:", " / ".join(row[0].strip() for row in cur.fetchall()))
        store.close()


if __name__ == "__main__":
    main()
