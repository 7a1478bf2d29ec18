"""The event log restored without the read models (the embedded
``events.sqlite`` put back alone): the read models stand past the log's
head and would show the lost timeline, so /ready answers 503 naming the
restore, never ready; the restore docs/operations.md gives (the derived
files deleted, then started) reads the restored log and replays clean."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from tests.interface.cli_support import cli
from tests.interface.helpers import funded_account
from tests.support.http import ADMIN, ThreadServer


def _backup(source: str, target: Path) -> None:
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)


def test_read_models_past_a_restored_log_are_not_ready(make_settings, tmp_path: Path):
    settings = make_settings("sqlite")
    server = ThreadServer(settings).start()
    kept = tmp_path / "events-backup.sqlite"
    try:
        with server.client(ADMIN) as client:
            funded_account(client, "2")
            events_file = server.service.settings.eventsourcing_env()["SQLITE_DBNAME"]
            _backup(events_file, kept)
            lost = funded_account(client, "3")  # lost with the restore
            assert client.get("/ready").status_code == 200
    finally:
        server.stop()
    for stale in Path(events_file).parent.glob(Path(events_file).name + "*"):
        stale.unlink()
    _backup(str(kept), Path(events_file))
    server = ThreadServer(settings).start()
    try:
        with server.client(ADMIN) as client:
            ready = client.get("/ready")
            assert ready.status_code == 503, ready.text
            message = ready.json()["error"]["message"]
            assert "past the event log's head" in message and "restored" in message
    finally:
        server.stop()
    data_dir = Path(events_file).parent
    for derived in ("readmodels.sqlite", "settlement.sqlite"):  # the documented restore
        files = list(data_dir.glob(derived + "*"))
        assert files, derived
        for stale in files:
            stale.unlink()
    server = ThreadServer(settings).start()
    try:
        with server.client(ADMIN) as client:
            assert client.get("/ready").status_code == 200
            assert client.get(f"/accounts/{lost}").status_code == 404
    finally:
        server.stop()
    replayed = cli(SimpleNamespace(kind="sqlite", settings=settings), "replay", "--rebuild")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
