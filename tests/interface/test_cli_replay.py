"""``deals-ledger replay``: the report, its exit status, and --rebuild."""

from __future__ import annotations

import json
import sqlite3
from uuid import uuid4

from application import commands as c
from tests.interface.cli_support import cli
from tests.support.services import pg_connect


def test_replay_reports_a_clean_ledger_and_exits_zero(ledger, store):
    source, destination = ledger.open_account(1_000), ledger.open_account()
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 5))
    result = cli(store, "replay", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mismatches"] == [] and report["supply_ok"] is True
    assert report["events_replayed"] == ledger.app.event_log.head()


def test_replay_after_a_rebuild_and_up_to_a_position(ledger, store):
    genesis_head = ledger.app.event_log.head()  # a whole commit's last position
    ledger.open_account(1_000)
    assert cli(store, "replay").returncode == 0
    result = cli(store, "replay", "--rebuild", "--until-position", str(genesis_head))
    assert result.returncode == 0, result.stderr
    assert (f"events replayed   {genesis_head} (to position {genesis_head})"
            in result.stdout)


def test_replay_exits_four_and_names_the_tampered_position(ledger, store):
    source, destination = ledger.open_account(1_000), ledger.open_account()
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 5, "original"))
    assert cli(store, "project", "--once").returncode == 0
    position = ledger.app.event_log.head()
    table = ledger.app.recorder.events_table_name
    forged = ledger.app.recorder.select_notifications(position, 1)[0].state.replace(
        b"original", b"forged!!")
    if store.kind == "sqlite":
        conn = sqlite3.connect(store.env["SQLITE_DBNAME"])
        with conn:
            conn.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?", (forged, position))
        conn.close()
    else:
        database = store.settings.database_url.rsplit("/", 1)[1]
        with pg_connect(database) as conn:
            conn.execute(f'UPDATE "{store.settings.postgres_schema}".{table} SET state = %s '
                         "WHERE notification_id = %s", (forged, position))
    result = cli(store, "replay")
    assert result.returncode == 4  # exit_codes.FINDINGS
    assert f"TAMPERED at position {position}" in result.stdout


def test_replay_refuses_a_time_without_a_timezone(ledger, store):
    result = cli(store, "replay", "--until", "2026-01-01T00:00:00")
    assert result.returncode == 2  # exit_codes.USAGE, as argparse's own refusals
    assert "--until: " in result.stderr and "offset" in result.stderr


def test_replay_json_is_the_api_answer_shape(ledger, store):
    """`replay --json` prints what `POST /v1/audit/replay` answers: the same
    fields, the supply as a DEAL decimal string, the anchors' `checked`."""
    from interface.http.schemas.responses import ReplayResponse

    ledger.open_account(1_000)
    result = cli(store, "replay", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == set(ReplayResponse.model_fields)
    assert isinstance(report["supply"], str)  # DEAL, as the API answers; never base units
    assert ReplayResponse.model_validate(report).supply == report["supply"]
    assert set(report["anchors"]) >= {"checked", "anchors_checked", "findings"}


def test_replay_names_an_event_appended_without_a_seal(service_ledger, store):
    """Seals on by default: an event appended by SQL alone stops the read
    models before it and the replay names it (exit 4), rather than failing."""
    from tests.support.raw_events import RawEvents

    account = service_ledger.open_account(funded=5)
    log = service_ledger.app.event_log
    forged_at = log.head() + 1
    last = log.read(forged_at - 2, 1)[0]
    RawEvents(service_ledger, store).execute(
        "INSERT INTO {t} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)", (last.originator_id, last.version + 1, last.topic, last.state))
    for options in ((), ("--rebuild",)):
        run = cli(store, "replay", "--json", *options)
        assert run.returncode == 4, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert [(m["model"], m["key"]) for m in report["mismatches"]] == [
            ("event_log", f"position {forged_at}")]
        assert report["position"] == forged_at - 1
    assert service_ledger.balance(account) == 5
