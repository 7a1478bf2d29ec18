"""A PostgreSQL server of the test's own: ``initdb`` into a temporary
directory, its own port, so a test can stop it (``fast`` or ``immediate``,
which is a crash) and start it again without touching the shared server.

PostgreSQL refuses to run as root; under root the server's files belong to
the ``postgres`` user and its commands run through ``runuser``. The
superuser is named after the test's PostgreSQL user (trust auth on
loopback only), so URLs look like the shared server's.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.services import PG_USER, free_port, unreachable

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """Always ``close()`` it: stops the server and removes its directory."""

    def __init__(self) -> None:
        bin_dir = _binaries()
        if bin_dir is None:
            unreachable("initdb", FileNotFoundError("PostgreSQL server binaries not found"))
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="deals-pg-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "server.log"
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", PG_USER, "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path),
                  "-o", options, "-w", "-t", str(START_TIMEOUT_S))

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, a clean shutdown; ``immediate``:
        every server process quits at once, as in a crash (recovery replays
        the WAL on the next start)."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w",
                  "-t", str(START_TIMEOUT_S))

    def close(self) -> None:
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,  # noqa: S603
                                check=False, cwd=self.root)
        if result.returncode != 0:
            log = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): "
                               f"{result.stderr[-2000:]}\n{log}")
