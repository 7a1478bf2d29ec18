"""What the deployed benchmark watches beside its loads: the settlement
store (movements made, settled, the backlog), CPU time of every process
involved, and memory. Linux only (``/proc``), read from outside the service
as an operator would.

CPU time counts: the ``serve`` process and all its descendants (every role a
deployment runs, however ``serve`` starts them); the PostgreSQL backends
connected from those processes (found by matching their client ports in
``pg_stat_activity`` to the service's sockets); and the Redis server. Not
counted: PostgreSQL's shared background processes (WAL writer, checkpointer)
and the load generator. Redis is shared with whatever else runs on the
machine, so its share is an upper bound.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PENDING = ("queued", "submitted")
DONE = ("settled", "failed")


# --- processes ----------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def rss_bytes(pids: list[int]) -> int:
    """Summed resident set size of ``pids`` (the ones still alive)."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:")), 0)
    return total


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def local_ports_to(pids: list[int], remote_port: int) -> set[int]:
    """Local TCP ports of ``pids``' connections to ``remote_port``."""
    inodes = _socket_inodes(pids)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def pids_named(name: str) -> list[int]:
    """Processes whose command name is ``name`` (e.g. ``redis-server``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class CpuSample:
    service: dict[int, float]
    postgres: dict[int, float]
    redis: dict[int, float]


class CpuMeter:
    """CPU seconds spent by the service's processes, the PostgreSQL backends
    serving them and Redis, between ``start()`` and ``stop()``."""

    def __init__(self, serve_pid: int, database_url: str, pg_port: int = 5432) -> None:
        self.serve_pid = serve_pid
        self.database_url = database_url
        self.pg_port = pg_port

    def _backends(self, service: list[int]) -> list[int]:
        ports = local_ports_to(service, self.pg_port)
        if not ports:
            return []
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)",
                                (list(ports),)).fetchall()
        return [row[0] for row in rows]

    def sample(self) -> CpuSample:
        service = process_tree(self.serve_pid)
        return CpuSample({p: cpu_seconds(p) for p in service},
                         {p: cpu_seconds(p) for p in self._backends(service)},
                         {p: cpu_seconds(p) for p in pids_named("redis-server")})

    @staticmethod
    def spent(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds per kind between two samples; a process new in
        ``after`` counts from zero (it started in between)."""
        def delta(a: dict[int, float], b: dict[int, float]) -> float:
            return sum(seconds - a.get(pid, 0.0) for pid, seconds in b.items())
        return {"service": delta(before.service, after.service),
                "postgres": delta(before.postgres, after.postgres),
                "redis": delta(before.redis, after.redis)}


# --- settlement ------------------------------------------------------------------

@dataclass
class SettlementSample:
    at: float  # time.monotonic()
    head: int  # the log's last position
    folded: int  # the settlement fold's position
    pending: int  # movements queued or submitted
    settled: int


@dataclass
class SettlementWatch:
    """Samples the settlement store of ``schema`` every ``period_s`` on a
    thread of its own, and answers what the report needs."""

    database_url: str
    schema: str
    events_table: str
    period_s: float = 0.25
    samples: list[SettlementSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        ident = sql.Identifier
        s = ident(self.schema)
        self._query = sql.SQL(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM {s}.{events}), "
            "(SELECT coalesce(max(position), 0) FROM {s}.settlement_tracking WHERE name = 'settlement'), "
            "(SELECT count(*) FILTER (WHERE status = ANY(%(pending)s)) FROM {s}.settlement_movements), "
            "(SELECT count(*) FILTER (WHERE status = 'settled') FROM {s}.settlement_movements)"
        ).format(s=s, events=ident(self.events_table))
        self._made = sql.SQL("SELECT count(*), count(*) FILTER (WHERE status = ANY(%(done)s)) "
                             "FROM {s}.settlement_movements WHERE position > %(a)s AND position <= %(b)s"
                             ).format(s=s)

    def __enter__(self) -> SettlementWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self._stop.is_set():
                try:
                    row = conn.execute(self._query, {"pending": list(PENDING)}).fetchone()
                except psycopg.errors.UndefinedTable:  # the service has not created them yet
                    row = None
                if row is not None:
                    self.samples.append(SettlementSample(time.monotonic(), *map(int, row)))
                self._stop.wait(self.period_s)

    def latest(self) -> SettlementSample | None:
        return self.samples[-1] if self.samples else None

    def movements_between(self, after: int, upto: int) -> tuple[int, int]:
        """(movements recorded at log positions in (after, upto], of which settled or failed)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(self._made, {"done": list(DONE), "a": after, "b": upto}).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def wait_settled(self, upto: int, timeout_s: float) -> float | None:
        """Wait until the fold has read position ``upto`` and no movement
        up to it is pending; the monotonic time it was so, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            latest = self.latest()
            if latest is not None and latest.folded >= upto:
                made, done = self.movements_between(0, upto)
                if made == done:
                    return time.monotonic()
            time.sleep(self.period_s)
        return None

    def backlog_max(self, start: float, end: float) -> int:
        """The most movements pending at once between two monotonic times."""
        return max((s.pending for s in self.samples if start <= s.at <= end), default=0)

    def fold_lag_max(self, start: float, end: float) -> int:
        """The most log positions the settlement fold trailed by in that span."""
        return max((s.head - s.folded for s in self.samples if start <= s.at <= end), default=0)

    def head(self) -> int:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}.{}").format(
                sql.Identifier(self.schema), sql.Identifier(self.events_table))).fetchone()
        assert row is not None
        return int(row[0])
