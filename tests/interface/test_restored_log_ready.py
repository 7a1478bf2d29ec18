"""The event log restored without the read models (the embedded
``events.sqlite`` put back alone; on PostgreSQL the log's tables alone):
the read models stand past the log's head, or, once commands were written
to the restored log, were folded from events it no longer holds. The
projector finds it at start; it stops there (/ready 503 naming it, never
ready with the lost timeline) unless DEALS_REBUILD_RESTORED_READ_MODELS
allows it to rebuild them from the log by itself (a log truncated or
altered on purpose looks the same); the answers then match a fresh
``replay --rebuild``, which checks clean."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from interface.wiring.seal_keys import open_ledger
from tests.interface.cli_support import cli
from tests.interface.helpers import funded_account
from tests.support.http import ADMIN, ThreadServer, wait_until
from tests.support.ledgers import LedgerHarness

LOG_TABLES = ("dealsledger_events", "dealsledger_snapshots", "commit_seals")
"""PostgreSQL: the event log, its aggregate snapshots and commit seals."""


class LogBackup:
    """A copy of the event log alone, never of what is derived from it."""

    def __init__(self, settings: Any, tmp_path: Path) -> None:
        self.settings = settings
        self.kept = tmp_path / "events-backup.sqlite"

    def take(self) -> None:
        if self.settings.uses_postgres:
            self._sql([f"DROP TABLE IF EXISTS backup_{t}; CREATE TABLE backup_{t} AS TABLE {t}"
                       for t in self._tables()])
            return
        with sqlite3.connect(self._events_file) as live, sqlite3.connect(self.kept) as copy:
            live.backup(copy)

    def restore(self) -> None:
        if self.settings.uses_postgres:
            self._sql([f"DELETE FROM {t}; INSERT INTO {t} SELECT * FROM backup_{t}"
                       for t in self._tables()])
            return
        events = Path(self._events_file)
        for stale in events.parent.glob(events.name + "*"):
            stale.unlink()
        shutil.copy2(self.kept, events)

    @property
    def _events_file(self) -> str:
        return self.settings.eventsourcing_env()["SQLITE_DBNAME"]

    def _tables(self) -> list[str]:
        present = self._sql(["SELECT table_name FROM information_schema.tables "
                             "WHERE table_schema = current_schema()"])
        return [table for table in LOG_TABLES if table in present]

    def _sql(self, statements: list[str]) -> set[str]:
        with psycopg.connect(self.settings.database_url, autocommit=True) as connection:
            connection.execute(f'SET search_path TO "{self.settings.postgres_schema}"')
            rows: set[str] = set()
            for statement in statements:
                cursor = connection.execute(statement)
                if cursor.description is not None:
                    rows |= {row[0] for row in cursor.fetchall()}
            return rows


def _answers(server: ThreadServer, accounts: list[str]) -> list[tuple[int, Any]]:
    with server.client(ADMIN) as client:
        wait_until(lambda: client.get("/ready").status_code == 200, 60, "the read models")
        return [(answer.status_code, _without_request_id(answer.json())) for answer in
                (client.get(f"/v1/accounts/{account}") for account in accounts)]


def _refused(client: Any) -> str | None:
    ready = client.get("/ready")
    assert ready.status_code != 200, ready.text
    message = ready.json()["error"]["message"]
    return message if "stopped at" in message or "past the event log's head" in message else None


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    if "error" in body:
        body["error"].pop("request_id", None)
    return body


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("written_since", [False, True], ids=["past_head", "written_since"])
def test_read_models_of_a_lost_timeline_are_rebuilt_from_the_restored_log(
    make_settings, tmp_path: Path, kind: str, written_since: bool, caplog,
):
    settings = make_settings(kind, settlement_enabled=False)
    allowed = settings.replace(rebuild_restored_read_models=True)
    backup = LogBackup(settings, tmp_path)
    server = ThreadServer(settings).start()
    try:
        with server.client(ADMIN) as client:
            kept = funded_account(client, "2")
            backup.take()
            lost = [funded_account(client, "3") for _ in range(3)]  # lost with the restore
            assert client.get("/ready").status_code == 200
            lost_head = server.service.store_position()
    finally:
        server.stop()
    backup.restore()
    accounts = [kept, *lost]
    if written_since:  # the restored log written to past the lost head before any projector ran
        ledger = LedgerHarness(settings.eventsourcing_env(), app=open_ledger(settings))
        try:
            while ledger.app.event_log.head() <= lost_head:
                accounts.append(str(ledger.open_account()))
        finally:
            ledger.close()

    server = ThreadServer(settings).start()  # not allowed: never ready with the lost timeline
    try:
        with server.client(ADMIN) as client:
            # /ready refuses a log behind the read models by itself; the
            # projector's own finding (its log line) comes from its thread
            refused = wait_until(
                lambda: "not rebuilt by itself" in caplog.text and _refused(client), 60,
                "the projector to find the lost timeline")
    finally:
        server.stop()
    assert ("DEALS_REBUILD_RESTORED_READ_MODELS" in refused if not written_since
            else "the projector stopped at position" in refused), refused
    server = ThreadServer(allowed).start()
    try:
        rebuilt = _answers(server, accounts)
    finally:
        server.stop()
    found = "are not the event log's" if written_since else "past the event log's head"
    assert found in caplog.text and "the log was restored without them" in caplog.text
    assert "rebuilding the read models from the event log" in caplog.text
    assert rebuilt[0][0] == 200 and [status for status, _ in rebuilt[1:4]] == [404] * 3
    replayed = cli(SimpleNamespace(kind=kind, settings=settings), "replay", "--rebuild")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    server = ThreadServer(settings).start()
    try:
        assert _answers(server, accounts) == rebuilt  # as a fresh replay answers
    finally:
        server.stop()
