"""Running ``deals-ledger`` as a separate process against the test's store."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(store) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALS_")}
    env["DEALS_DATA_DIR"] = str(store.settings.data_dir)
    if store.kind == "postgres":
        env["DEALS_DATABASE_URL"] = store.settings.database_url
        env["DEALS_POSTGRES_SCHEMA"] = store.settings.postgres_schema
    return env


def cli(store, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "interface.cli", *args], cwd=REPO, env=cli_env(store),
        capture_output=True, text=True, timeout=120, **kwargs,
    )


def spawn(store, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "interface.cli", *args], cwd=REPO, env=cli_env(store),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: wait_ready's select sees every line not yet read
    )


def wait_ready(worker: subprocess.Popen, timeout_s: float = 60) -> None:
    """Wait for a ``project`` worker's "projector running" line on stderr
    (lines before it, a start-up warning say, are kept for the failure)."""
    assert worker.stderr is not None
    deadline = time.monotonic() + timeout_s
    seen: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([worker.stderr], [], [], left)
        line = worker.stderr.readline() if ready else b""
        if b"projector running" in line:
            return
        if not line:
            break
        seen.append(line)
    raise AssertionError(f"no 'projector running' line; stderr so far: {seen!r}")
