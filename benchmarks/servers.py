"""Servers under test as real subprocesses: the ledger exactly as an operator
runs it (``deals-ledger serve``, uvicorn, one worker) and the bare FastAPI
baseline (``benchmarks.bare_server``) under the same uvicorn settings.

Both print a banner naming the bound port (``--port 0`` picks a free one);
their output goes to a log file, never to a pipe nobody reads (a full pipe
would stall the server and the figures with it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BANNER = re.compile(r"listening on http://([\w.\-]+):(\d+)")


class ServerProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        cwd=self.cwd)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            found = BANNER.search(self.log_path.read_text(errors="replace"))
            if found and self._healthy():
                self.host, self.port = found.group(1), int(found.group(2))
                return self
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout_s} s:\n{self.log_tail()}")

    def _healthy(self) -> bool:
        if not self.port:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=1) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc (Linux)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def ledger_server(env: dict[str, str], log_path: Path) -> ServerProcess:
    """``deals-ledger serve`` on a free port with ``env`` (DEALS_* settings)."""
    argv = [sys.executable, "-m", "interface.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    return ServerProcess(argv, {**os.environ, **env}, log_path)


def bare_server(log_path: Path) -> ServerProcess:
    argv = [sys.executable, "-m", "benchmarks.bare_server"]
    return ServerProcess(argv, dict(os.environ), log_path)
