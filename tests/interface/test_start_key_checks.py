"""Key files that cannot be used stop every role before it starts, with one
line and EX_CONFIG (78): ``serve`` too, which used to print "Uvicorn
running on", then a traceback from its lifespan, and exit 3."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from interface.chain.custody import KEY_FILE_NAME_DEFAULT
from interface.cli import exit_codes
from interface.wiring.seal_keys import COMMIT_KEYS_FILE_NAME
from tests.interface.cli_support import REPO, cli, cli_env


def serve(store) -> subprocess.CompletedProcess:
    env = {**cli_env(store), "DEALS_SETTLEMENT": "off"}
    return subprocess.run(
        [sys.executable, "-m", "interface.cli", "serve", "--port", "0"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, said: str) -> None:
    assert result.returncode == exit_codes.CONFIG, result.stderr
    assert result.stderr.count("\n") == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Uvicorn running" not in result.stderr


@pytest.fixture
def initialised(store):
    created = cli(store, "init")
    assert created.returncode == exit_codes.OK, created.stderr
    return store


def test_a_sealed_ledger_without_its_keys_stops_serve_with_one_line(initialised):
    (initialised.settings.data_dir / COMMIT_KEYS_FILE_NAME).unlink()  # another host
    assert_one_line(serve(initialised), "the event log is sealed")
    assert_one_line(cli(initialised, "replay"), "the event log is sealed")


@pytest.mark.parametrize("command", ["serve", "replay"])
def test_a_custody_key_readable_by_others_is_one_line(initialised, command):
    key = initialised.settings.data_dir / KEY_FILE_NAME_DEFAULT
    os.chmod(key, 0o644)
    result = serve(initialised) if command == "serve" else cli(initialised, command)
    assert_one_line(result, "chmod 600")
