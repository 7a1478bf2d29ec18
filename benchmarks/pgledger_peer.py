"""The peer of the deployed benchmark: pgledger (github.com/pgr0ss/pgledger),
a ledger made of SQL functions, on the same PostgreSQL, driven by pgbench.

Its files are never committed here: they come from a checkout given on the
command line (``--pgledger DIR``) or are cloned at benchmark time into a
temporary folder. Without them the peer's ratios are "not reported"; there is
no home-made imitation. ``vendor/scoville-pgsql-ulid/*.sql`` and then
``pgledger.sql`` are loaded (in one transaction, as pgledger's own ``just
dbload`` does) into a fresh database, dropped at the end.

Two pgbench scripts, 32 clients, the same number of seconds as the HTTP
loads: ``uniform`` (``pgledger_create_transfer`` between a random pair of
1,000 accounts) and ``hot`` (from a random account into one account, as the
fees go into the treasury). pgledger's account ids are text it generates, so
a lookup table maps pgbench's integers to them (an index probe per account,
which the peer pays and the ledger does not).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPOSITORY = "https://github.com/pgr0ss/pgledger"
HOT = 0
"""The lookup number of the one account every ``hot`` transfer goes into."""

SCRIPTS = {
    "uniform": """\
\\set a random(1, {accounts})
\\set d random(1, {accounts} - 1)
\\set b 1 + (:a + :d - 1) % {accounts}
SELECT id FROM pgledger_create_transfer((SELECT id FROM bench_accounts WHERE n = :a), \
(SELECT id FROM bench_accounts WHERE n = :b), 1.00);
""",
    "hot": f"""\
\\set a random(1, {{accounts}})
SELECT id FROM pgledger_create_transfer((SELECT id FROM bench_accounts WHERE n = :a), \
(SELECT id FROM bench_accounts WHERE n = {HOT}), 1.00);
""",
}


def pgbench_script(kind: str, accounts: int) -> str:
    """The pgbench script for ``kind`` (``uniform`` or ``hot``) among
    ``accounts`` accounts numbered from 1 (the hot one is 0)."""
    return SCRIPTS[kind].format(accounts=accounts)


def sql_files(checkout: Path) -> list[Path] | None:
    """pgledger's files in load order (the vendored ULID functions sorted,
    then ``pgledger.sql``), or None when ``checkout`` does not hold them."""
    vendored = sorted((checkout / "vendor" / "scoville-pgsql-ulid").glob("*.sql"))
    main = checkout / "pgledger.sql"
    if not vendored or not main.is_file():
        return None
    return [*vendored, main]


def fetch_checkout(into: Path) -> tuple[Path | None, str]:
    """``git clone`` pgledger into ``into``: (the checkout, "") or (None,
    why not: no network, no git)."""
    try:
        run = subprocess.run(["git", "clone", "--depth", "1", "--quiet", REPOSITORY, str(into)],
                             capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"git clone failed: {error}"
    if run.returncode != 0:
        return None, f"git clone {REPOSITORY} failed: {run.stderr.strip()[-300:]}"
    return into, ""


@dataclass(frozen=True)
class PeerResult:
    kind: str
    tps: float
    transactions: int
    failed: int
    latency_avg_ms: float | None = None


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new database on the server of ``url``; yields its URL, dropped at the end."""
    name = f"bench_pgledger_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def load(database_url: str, files: list[Path], accounts: int) -> None:
    """Load pgledger's ``files`` with psql (stop at the first error), then
    open ``accounts`` + 1 accounts with its own ``pgledger_create_account``."""
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "-d", database_url]
    for path in files:
        argv += ["-f", str(path)]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"loading pgledger failed: {run.stderr[-2000:]}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_accounts (n INT PRIMARY KEY, id TEXT NOT NULL)")
        conn.execute("INSERT INTO bench_accounts SELECT n, (pgledger_create_account("
                     "'bench-' || n, 'DEAL')).id FROM generate_series(%s::int, %s::int) AS n",
                     (HOT, accounts))
        conn.execute("VACUUM ANALYZE")


_TPS = re.compile(r"^tps = ([\d.]+)", re.M)
_PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")
_FAILED = re.compile(r"number of failed transactions: (\d+)")
_LATENCY = re.compile(r"latency average = ([\d.]+) ms")


def parse_pgbench(kind: str, output: str) -> PeerResult:
    """pgbench's summary as a PeerResult. Raises ValueError without a tps line."""
    tps = _TPS.search(output)
    if tps is None:
        raise ValueError(f"no tps in pgbench's output:\n{output[-2000:]}")
    processed = _PROCESSED.search(output)
    failed = _FAILED.search(output)
    latency = _LATENCY.search(output)
    return PeerResult(kind, float(tps.group(1)), int(processed.group(1)) if processed else 0,
                      int(failed.group(1)) if failed else 0,
                      float(latency.group(1)) if latency else None)


def run_pgbench(database_url: str, script: Path, kind: str, *, clients: int, threads: int,
                seconds: float) -> PeerResult:
    """pgbench ``script`` for ``seconds`` on ``clients`` connections (deadlocks
    retried, as pgbench 15 can, and counted as failures if they persist)."""
    params = conninfo_to_dict(database_url)
    env_args = ["-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", 5432)),
                "-U", str(params.get("user", "root"))]
    argv = ["pgbench", "-n", *env_args, "-c", str(clients), "-j", str(threads),
            "-T", str(max(1, round(seconds))), "--max-tries=10", "-f", str(script),
            str(params["dbname"])]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    return parse_pgbench(kind, run.stdout + run.stderr)
