"""Processes starting together on a fresh PostgreSQL schema (``serve
--workers 2``, projection and settlement workers) each create the event
store's tables; none of them may fail for the others' DDL.

PostgreSQL answers concurrent ``CREATE TABLE IF NOT EXISTS`` with a
duplicate key in ``pg_type`` and concurrent ``CREATE OR REPLACE FUNCTION``
with "tuple concurrently updated"; CI caught the first on the snapshots
table, which killed one of two server workers at start."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from application.write.event_store import LedgerApplication
from projections.read_model_store import open_store

STARTERS = 6
ROUNDS = 10


def start_together(env: dict[str, str], starters: int) -> list[tuple[LedgerApplication, Any]]:
    """What each worker does at start: the event store, then the read models."""
    barrier = threading.Barrier(starters)

    def start(_: int) -> tuple[LedgerApplication, Any]:
        barrier.wait()
        return LedgerApplication(env), open_store(env)

    with ThreadPoolExecutor(starters) as pool:
        return list(pool.map(start, range(starters)))


def test_workers_starting_together_on_a_fresh_schema_all_start(postgres, postgres_database):
    for round_ in range(ROUNDS):
        schema = postgres_database.new_schema()
        env = {**postgres.settings.eventsourcing_env(), "POSTGRES_SCHEMA": schema}
        try:
            started = start_together(env, STARTERS)
            try:
                assert [app.recorder.max_notification_id() for app, _ in started] == [
                    None] * STARTERS, round_
                assert [store.position() for _, store in started] == [0] * STARTERS, round_
            finally:
                for app, store in started:
                    store.close()
                    app.close()
        finally:
            postgres_database.drop_schema(schema)
