"""``deals-ledger project`` and ``deals-ledger settle`` as worker processes,
started exactly as an operator starts them (the API's is ServeProcess)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.http import START_TIMEOUT_S, ChildProcess, _clean_environ, wait_until

RUNNING_LINES = {"project": "projector running", "settle": "settler running"}


class WorkerProcess(ChildProcess):
    def __init__(self, workdir: Path, env: dict[str, str], command: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.stderr_path = workdir / f"{command}-{time.monotonic_ns()}.err"
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "interface.cli", command], cwd=workdir,
                env={**_clean_environ(), **env}, stdout=subprocess.DEVNULL, stderr=err,
            )
        wait_until(self._running, START_TIMEOUT_S, f"deals-ledger {command} to run")

    def _running(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.command} exited early:\n{self.stderr_path.read_text()[-3000:]}")
        return RUNNING_LINES[self.command] in self.stderr_path.read_text()

