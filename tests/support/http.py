"""Real HTTP servers for the API tests.

``ThreadServer`` runs the app under uvicorn in a thread, on a real socket, so
tests talk HTTP to it and can still look at the service behind it.
``ServeProcess`` runs ``deals-ledger serve`` as a subprocess, exactly as an
operator does, for the CLI, SIGTERM and restart tests. Both wait on
conditions (the server reports started; /health answers), never on sleeps.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from interface.http.app import create_app
from interface.http.auth import parse_api_keys
from interface.http.server import uvicorn_config
from interface.wiring.settings import Settings

ADMIN, WRITER, READER, READ_WRITE = "admin-token", "writer-token", "reader-token", "rw-token"
WITHDRAWER = "withdrawer-token"
API_KEYS = (
    f"admin:{ADMIN}:admin,writer:{WRITER}:ledger:write,reader:{READER}:ledger:read,"
    f"rw:{READ_WRITE}:ledger:read|ledger:write,withdrawer:{WITHDRAWER}:ledger:withdraw"
)
START_TIMEOUT_S = 60.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until(condition, timeout_s: float, what: str, interval_s: float = 0.02):
    """Poll a condition until it holds (bounded); the value it returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def wait_while_progressing(remaining, stall_s_max: float, what: str,
                           interval_s: float = 0.2) -> None:
    """Poll ``remaining()`` (a count of what is left) until it is 0. Fail
    only when it stops shrinking for ``stall_s_max``: a busy machine makes
    the work slower, never a stall, so the bound is on progress, not on
    the total time a large backlog takes."""
    left = remaining()
    last_progress = time.monotonic()
    while left:
        if time.monotonic() - last_progress > stall_s_max:
            raise TimeoutError(f"{what}: {left} left, no progress for {stall_s_max} s")
        time.sleep(interval_s)
        now_left = remaining()
        if now_left < left:
            last_progress = time.monotonic()
        left = now_left


class ThreadServer:
    def __init__(self, settings: Settings, api_keys: str = API_KEYS) -> None:
        self.app = create_app(settings, keyring=parse_api_keys(api_keys))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn_config(self.app, settings.replace(shutdown_grace_s=10),
                                log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> ThreadServer:
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(),
                   START_TIMEOUT_S, "the server to start")
        if not self._server.started:
            raise RuntimeError("the server did not start")
        return self

    @property
    def service(self):
        return self.app.state.service

    def client(self, token: str | None = ADMIN, **kwargs) -> httpx.Client:
        headers = bearer(token) if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        """Stop serving and wait until the lifespan has stopped the service
        (writer and projector threads), so nothing of it outlives the test."""
        self._server.should_exit = True
        self._thread.join(60)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the test server did not stop within 60 s")


class ChildProcess:
    """Stopping a child process of the tests, gently or not."""

    process: subprocess.Popen

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


class ServeProcess(ChildProcess):
    """``deals-ledger serve --port 0`` in a subprocess; output in files."""

    def __init__(self, workdir: Path, env: dict[str, str], *args: str,
                 files_max: int | None = None) -> None:
        """``files_max``: the server's open-file limit (RLIMIT_NOFILE)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = workdir / f"serve-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        full_env = {**_clean_environ(), **env}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interface.cli", "serve", "--port", "0", *args],
                cwd=workdir, env=full_env, stdout=out, stderr=err,
                preexec_fn=None if files_max is None else lambda: _limit_files(files_max),
            )
        self.url = wait_until(self._listening_url, START_TIMEOUT_S, "the serve banner")
        wait_until(self._healthy, START_TIMEOUT_S, "/health")

    @property
    def banner(self) -> str:
        return self.stdout_path.read_text()

    def _listening_url(self) -> str | None:
        if self.process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{self.stderr_path.read_text()[-3000:]}")
        for line in self.banner.splitlines():
            if line.startswith("{"):  # DEALS_LOG_FORMAT=json: the banner is a log record
                record = json.loads(line)
                if "listening on" in record.get("message", ""):
                    return str(record["url"])
            elif match := re.search(r"listening on (http://\S+)", line):
                return match.group(1)
        return None

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{self.stderr_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, token: str | None, **kwargs) -> httpx.Client:
        headers = bearer(token) if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)


def _limit_files(files_max: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (files_max, files_max))


def _clean_environ() -> dict[str, str]:
    """The test's environment without DEALS_* settings that could leak in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEALS_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env
