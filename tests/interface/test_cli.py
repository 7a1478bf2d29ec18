"""The command line as an operator meets it: --version, documented exit
statuses, a store without a ledger refused by the commands that read one,
negative positions refused, --json where a command reports, and no
progress bar drawn into a pipe."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from interface.cli import exit_codes
from interface.cli.main import main
from interface.cli.progress_bars import Progress
from tests.interface.cli_support import cli


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty folder as the working directory, no DEALS_* settings."""
    import os

    for name in list(os.environ):
        if name.startswith("DEALS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("deals-ledger 0.")


def test_help_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in (exit_codes.FINDINGS, exit_codes.NO_LEDGER, exit_codes.USAGE, exit_codes.CONFIG):
        assert f"\n  {code}  " in out
    codes = [exit_codes.OK, exit_codes.FAILURE, exit_codes.USAGE, exit_codes.NOT_STARTED,
             exit_codes.FINDINGS, exit_codes.NO_LEDGER, exit_codes.CONFIG]
    assert len(set(codes)) == len(codes)


@pytest.mark.parametrize("command", [["init"], ["serve"], ["settle", "--once"], ["settings"]])
def test_a_refused_setting_exits_config_not_as_an_outage(elsewhere, capsys, monkeypatch, command):
    """A service manager restarts on FAILURE (an outage may pass) but not on
    CONFIG: a bad value stays bad until someone fixes it."""
    monkeypatch.setenv("DEALS_PORT", "abc")
    assert main(command) == exit_codes.CONFIG
    assert "DEALS_PORT" in capsys.readouterr().err
    assert exit_codes.CONFIG not in (exit_codes.FAILURE, exit_codes.NOT_STARTED)


def test_bad_api_keys_are_refused_before_any_store_is_created(elsewhere, capsys, monkeypatch):
    monkeypatch.setenv("DEALS_API_KEYS", "garbage")
    assert main(["serve", "--port", "0"]) == exit_codes.CONFIG
    err = capsys.readouterr().err
    assert err == "deals-ledger: setting refused: DEALS_API_KEYS: entry 1 is not name:token:scopes\n"
    assert not (elsewhere / "var").exists()  # no data dir, no empty tables


def test_an_unreachable_postgresql_is_named_without_its_password(elsewhere, capsys, monkeypatch):
    """An outage (FAILURE, which a service manager retries), named by host,
    port, database and setting rather than the pool's bare timeout."""
    import socket

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        monkeypatch.setenv("DEALS_DATABASE_URL", f"postgresql://ledger:s3cret@127.0.0.1:{port}/deals")
        for command in (["init"], ["serve", "--port", "0"], ["replay"]):
            assert main(command) == exit_codes.FAILURE
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "s3cret" not in err
            assert err.startswith(f"deals-ledger: cannot reach PostgreSQL: database 'deals' on "
                                  f"127.0.0.1:{port} (DEALS_DATABASE_URL): "), err
            assert "refused" in err


@pytest.mark.parametrize("schema", ["pg_x", 'a"b', "Ledger", "x" * 64, "1st"])
def test_a_schema_name_the_store_cannot_use_is_one_line_naming_the_setting(
        elsewhere, capsys, monkeypatch, schema):
    """Before, these reached PostgreSQL and came back as its multi-line
    syntax errors (or, for a long name, were silently cut to 63 bytes)."""
    monkeypatch.setenv("DEALS_DATABASE_URL", "postgresql://ledger@127.0.0.1:5432/deals")
    monkeypatch.setenv("DEALS_POSTGRES_SCHEMA", schema)
    assert main(["init"]) == exit_codes.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("deals-ledger: setting refused: DEALS_POSTGRES_SCHEMA: expected a "
                          "PostgreSQL schema name"), err


def test_an_unusable_time_option_is_a_usage_error(elsewhere, capsys):
    assert main(["replay", "--until", "2026-01-01T00:00:00"]) == exit_codes.USAGE
    assert "--until" in capsys.readouterr().err
    assert not (elsewhere / "var").exists()


@pytest.mark.parametrize("command", [["replay"], ["replay", "--rebuild"], ["project", "--once"],
                                     ["settle", "--once"], ["reconcile"]])
def test_commands_that_read_a_ledger_refuse_a_folder_without_one(elsewhere, capsys, command):
    assert main(command) == exit_codes.NO_LEDGER
    err = capsys.readouterr().err
    assert "no ledger in" in err and "DEALS_DATA_DIR" in err and "deals-ledger init" in err
    assert not (elsewhere / "var").exists()  # nothing was created


def test_an_empty_event_store_is_no_ledger_either(elsewhere, capsys):
    (elsewhere / "var").mkdir()
    sqlite3.connect(elsewhere / "var" / "events.sqlite").close()
    assert main(["replay"]) == exit_codes.NO_LEDGER
    assert "holds no ledger" in capsys.readouterr().err


def test_a_postgres_schema_without_a_ledger_is_refused(postgres_database, capsys, monkeypatch):
    if isinstance(postgres_database, Exception):
        pytest.skip("PostgreSQL unreachable")
    monkeypatch.setenv("DEALS_DATABASE_URL", postgres_database.url)
    schema = postgres_database.new_schema()
    monkeypatch.setenv("DEALS_POSTGRES_SCHEMA", schema)
    assert main(["replay"]) == exit_codes.NO_LEDGER
    err = capsys.readouterr().err
    assert f"no ledger in schema '{schema}' of database" in err and "DEALS_POSTGRES_SCHEMA" in err


@pytest.mark.parametrize("value", ["-1", "ten"])
def test_a_bad_position_is_a_usage_error(elsewhere, capsys, value):
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--until-position", value])
    assert exited.value.code == exit_codes.USAGE
    assert "--until-position" in capsys.readouterr().err


def test_init_then_replay_with_json_and_exit_statuses(ledger, store):
    replayed = cli(store, "replay", "--json")
    assert replayed.returncode == exit_codes.OK, replayed.stderr
    assert json.loads(replayed.stdout)["supply_ok"] is True
    projected = cli(store, "project", "--once", "--json")
    assert projected.returncode == exit_codes.OK, projected.stderr
    assert set(json.loads(projected.stdout)) == {"applied_events", "position"}
    assert "\r" not in replayed.stderr + projected.stderr  # no bar drawn into a pipe


def test_init_reports_as_json(elsewhere, capsys):
    assert main(["init", "--json"]) == exit_codes.OK
    report = json.loads(capsys.readouterr().out)
    assert report["supply"] == "1000000000" and set(report["accounts"]) == {
        "treasury", "rewards", "issuance", "external"}
    assert main(["replay", "--json"]) == exit_codes.OK  # now there is a ledger here


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_only_on_a_terminal_and_never_past_its_total():
    piped = io.StringIO()
    progress = Progress("replay", 10, stream=piped)
    for position in (3, 10, 14):
        progress(position)
    progress.done()
    assert piped.getvalue() == ""
    terminal = FakeTerminal()
    progress = Progress("replay", 10, stream=terminal)
    for position in (3, 10, 14):  # the log grew while it was read
        progress(position)
    assert progress.bar.n == 14 and progress.bar.total == 14
    progress.done()
    assert "replay" in terminal.getvalue() and "14/14" in terminal.getvalue()


def test_init_creates_a_missing_postgres_schema(postgres_database, elsewhere, capsys,
                                                monkeypatch):
    import uuid

    from tests.support.services import pg_connect

    if isinstance(postgres_database, Exception):
        pytest.skip("PostgreSQL unreachable")
    schema = f"t_new_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DEALS_DATABASE_URL", postgres_database.url)
    monkeypatch.setenv("DEALS_POSTGRES_SCHEMA", schema)
    monkeypatch.setenv("DEALS_SETTLEMENT", "off")
    try:
        assert main(["init"]) == exit_codes.OK, capsys.readouterr().err
        assert main(["replay", "--json"]) == exit_codes.OK
    finally:
        postgres_database.drop_schema(schema)
    with pg_connect(postgres_database.name) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (schema,)).fetchone() is None  # dropped: it was created


def test_a_role_that_may_not_create_the_schema_gets_one_line(postgres_database, elsewhere,
                                                             capsys, monkeypatch):
    import uuid

    from tests.support.services import PG_HOST, PG_PORT, pg_connect

    if isinstance(postgres_database, Exception):
        pytest.skip("PostgreSQL unreachable")
    role = f"deals_test_role_{uuid.uuid4().hex[:8]}"
    with pg_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        url = f"postgresql://{role}@{PG_HOST}:{PG_PORT}/{postgres_database.name}"
        monkeypatch.setenv("DEALS_DATABASE_URL", url)
        monkeypatch.setenv("DEALS_POSTGRES_SCHEMA", "not_there")
        assert main(["init"]) == exit_codes.CONFIG
    finally:
        with pg_connect() as conn:
            conn.execute(f'DROP ROLE "{role}"')
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DEALS_POSTGRES_SCHEMA" in err and "may not create" in err
    assert (f"schema 'not_there' does not exist in database '{postgres_database.name}' on "
            f"{PG_HOST}:{PG_PORT} and this role may not create it") in err
    assert err.count("not_there") == 1  # named once, not again after the database


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_says_listening_only_once_the_app_has_started(tmp_path, workers):
    """A start that fails in the app's lifespan (here: a webhook without its
    secret) prints neither the banner nor a key, and exits NOT_STARTED."""
    import subprocess
    import sys

    from tests.support.http import _clean_environ

    env = {**_clean_environ(), "DEALS_DATA_DIR": str(tmp_path / "var"),
           "DEALS_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts", "DEALS_SETTLEMENT": "off"}
    result = subprocess.run(
        [sys.executable, "-m", "interface.cli", "serve", "--port", "0", "--workers", workers],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == exit_codes.NOT_STARTED
    assert "listening" not in result.stdout and "API key" not in result.stdout
    assert "DEALS_ALERT_WEBHOOK_SECRET" in result.stderr


def test_settle_once_reports_as_json(ledger, store):
    settled = cli(store, "settle", "--once", "--json")
    assert settled.returncode == exit_codes.OK, settled.stderr
    report = json.loads(settled.stdout)
    assert set(report) == {"settlement_steps", "waiting"} and report["waiting"] == 0


def test_the_operations_guide_lists_every_exit_status_and_its_units_stop_on_config():
    """The guide's table is the operators' list: a status the code has but
    the table lacks fails here, as does a systemd unit that would restart a
    refused setting forever."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = {int(code) for code in re.findall(r"^\| (\d+) \| ", guide, flags=re.MULTILINE)}
    codes = {value for name, value in vars(exit_codes).items()
             if name.isupper() and isinstance(value, int)}
    assert table == codes
    units = re.findall(r"^RestartPreventExitStatus=(.*)$", guide, flags=re.MULTILINE)
    assert len(units) >= 2
    assert all(str(exit_codes.CONFIG) in unit.split() for unit in units), units


def test_reconcile_text_writes_flags_as_yes_or_no(capsys):
    """It printed Python's spelling: `truncated False`."""
    from interface.cli.reconcile import _show

    _show({"truncated": False, "clean": True, "findings": [{"id": "f1", "adjusted": False}]},
          as_json=False)
    out = capsys.readouterr().out
    assert "False" not in out and "True" not in out
    assert out.splitlines() == [f"{'truncated':<26}no", f"{'clean':<26}yes",
                                f"{'findings':<26}1", "  id=f1 adjusted=no"]


def test_the_guides_systemd_units_keep_their_role_settings_and_state_directory():
    """Every unit creates the state directory, and a role's own settings are
    set on ExecStart (systemd lets EnvironmentFile= override Environment=,
    so a shared env file could turn projections back on in serve)."""
    import re
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    units = [block for block in re.findall(r"```ini\n(.*?)```", guide, flags=re.DOTALL)
             if "ExecStart=" in block]
    assert {re.search(r"deals-ledger (serve|project|settle)", unit).group(1)
            for unit in units} == {"serve", "project", "settle"}
    for unit in units:
        assert "StateDirectory=deals-ledger" in unit and "User=deals-ledger" in unit, unit
        assert not re.search(r"^Environment=", unit, flags=re.MULTILINE), unit
    roles = {re.search(r"deals-ledger (serve|project|settle)", unit).group(1):
             unit.split("ExecStart=")[1] for unit in units}
    assert "DEALS_PROJECTIONS=off DEALS_SETTLEMENT=off" in roles["serve"]
    assert "DEALS_PROJECTIONS=off" in roles["settle"]
