"""Key files that cannot be used stop every role before it starts, with one
line and EX_CONFIG (78): ``serve`` too, which used to print "Uvicorn
running on", then a traceback from its lifespan, and exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from solders.keypair import Keypair

from interface.chain.custody import KEY_FILE_NAME_DEFAULT, ROLE_KEY_FILE_NAMES
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


@pytest.mark.parametrize("command", ["serve", "custody"])
def test_the_key_of_a_separate_power_readable_by_others_is_one_line(initialised, command,
                                                                    tmp_path):
    key = initialised.settings.data_dir / ROLE_KEY_FILE_NAMES["mint-authority"]
    key.write_text(json.dumps(list(bytes(Keypair()))))
    os.chmod(key, 0o644)
    new = tmp_path / "new.json"
    new.write_text(json.dumps(list(bytes(Keypair()))))
    new.chmod(0o600)
    result = serve(initialised) if command == "serve" else cli(
        initialised, "custody", "rotate", "mint-authority", "--new-keypair", str(new))
    assert_one_line(result, "chmod 600")
    assert "mint-authority key file" in result.stderr


def test_a_missing_key_file_of_a_power_is_one_line_naming_it(initialised, tmp_path):
    env = {**cli_env(initialised), "DEALS_FEE_PAYER_KEYPAIR": str(tmp_path / "absent.json")}
    result = subprocess.run([sys.executable, "-m", "interface.cli", "replay"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert_one_line(result, "fee-payer key file")
