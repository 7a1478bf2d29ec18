"""``deals-ledger bench --quick`` runs all nine scenarios end to end, prints
every figure next to its same-run baseline as a ratio, and leaves no schema
behind in PostgreSQL or Redis. (A smoke test of the harness: the quick sizes measure nothing.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.interface.cli_support import REPO
from tests.support.services import REDIS_URL, pg_connect, unreachable

pytestmark = pytest.mark.postgres


def _redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as error:
        unreachable("Redis", error)
    return REDIS_URL


def _bench_schemas(database: str) -> set[str]:
    with pg_connect(database) as conn:
        rows = conn.execute("SELECT schema_name FROM information_schema.schemata "
                            "WHERE schema_name LIKE 'bench_%'").fetchall()
    return {row[0] for row in rows}


def _bench_redis_keys(redis_url: str) -> set[bytes]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return set(client.scan_iter(match="deals-bench_*", count=1000))
    finally:
        client.close()


def test_quick_bench_runs_every_scenario_and_prints_ratios(postgres_database, tmp_path):
    if isinstance(postgres_database, Exception):
        unreachable("PostgreSQL", postgres_database)
    redis_url = _redis_url()
    before = _bench_schemas(postgres_database.name)
    keys_before = _bench_redis_keys(redis_url)
    figures_file = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "interface.cli", "bench", "--quick",
         "--database-url", postgres_database.url, "--redis-url", redis_url,
         "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=900,  # a hang guard, not a bound
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(figures_file.read_text())
    assert {f["scenario"] for f in figures} == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    with_baseline = [f for f in figures if f["baseline_name"]]
    assert {f["scenario"] for f in with_baseline} == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    assert all(f["ratio"] and f["ratio"] > 0 for f in with_baseline), figures
    assert "ratio" in run.stdout and "bare FastAPI endpoint" in run.stdout
    assert _bench_schemas(postgres_database.name) == before
    # nothing this run wrote is left (a concurrent run's keys may come and go)
    assert not _bench_redis_keys(redis_url) - keys_before
