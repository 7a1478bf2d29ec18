"""With DEALS_LOG_FORMAT=json every line a worker role writes is one JSON
object: ``project`` and ``settle`` said "... running; SIGTERM stops it" as
plain text beside their JSON records."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time

import pytest

from interface.cli import exit_codes
from tests.interface.cli_support import REPO, cli, cli_env


def stderr_until_running(worker: subprocess.Popen, timeout_s: float = 60) -> list[bytes]:
    """The lines up to and with the role's start line (a deadline, no sleep)."""
    assert worker.stderr is not None
    deadline, lines = time.monotonic() + timeout_s, []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([worker.stderr], [], [], left)
        line = worker.stderr.readline() if ready else b""
        if not line:
            break
        lines.append(line)
        if b"running; SIGTERM stops it" in line:
            return lines
    raise AssertionError(f"no start line; stderr so far: {lines!r}")


@pytest.mark.parametrize("role", ["project", "settle"])
def test_a_role_started_with_json_logs_writes_only_json_lines(store, role):
    assert cli(store, "init").returncode == exit_codes.OK
    env = {**cli_env(store), "DEALS_LOG_FORMAT": "json"}
    worker = subprocess.Popen([sys.executable, "-m", "interface.cli", role], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              bufsize=0)  # unbuffered: select sees every line not yet read
    try:
        lines = stderr_until_running(worker)
        worker.send_signal(signal.SIGTERM)
        _, rest = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    lines += rest.splitlines(keepends=True)
    records = [json.loads(line) for line in lines if line.strip()]
    assert any(record["message"] == f"{'projector' if role == 'project' else 'settler'} "
               "running; SIGTERM stops it" and record["level"] == "INFO" for record in records)
