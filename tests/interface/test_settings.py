"""Settings from the environment (pydantic-settings): typed, validated, each
refusal naming its variable and what it accepts, secrets never echoed; and
``deals-ledger settings`` printing them redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interface.cli.main import main
from interface.wiring.settings import Settings, SettingsError
from interface.wiring.settler import settlement_config


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean DEALS_* environment in an empty working directory."""
    import os

    for name in list(os.environ):
        if name.startswith("DEALS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def refusal(env, **variables: str) -> str:
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    return str(caught.value)


def test_variables_are_read_typed(env):
    env.setenv("DEALS_PORT", "9001")
    env.setenv("DEALS_PROJECTIONS", "off")
    env.setenv("DEALS_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    env.setenv("DEALS_SUSPICIOUS_LARGE_AMOUNT", "2.5")
    env.setenv("DEALS_SETTLEMENT_COMMITMENT", "finalized")
    settings = Settings.from_env()
    assert settings.port == 9001
    assert settings.projections_enabled is False
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    assert settings.suspicious_large_amount == 250_000_000  # base units, exact
    assert settings.settlement_commitment == "finalized"


def test_new_withdrawal_addresses_cool_down_a_day_unless_set(env):
    assert Settings.from_env().withdrawal_wallet_cooldown_s == 86_400
    env.setenv("DEALS_WITHDRAWAL_WALLET_COOLDOWN_S", "0")
    assert Settings.from_env().withdrawal_wallet_cooldown_s == 0
    assert refusal(env, DEALS_WITHDRAWAL_WALLET_COOLDOWN_S="-1").startswith(
        "DEALS_WITHDRAWAL_WALLET_COOLDOWN_S: ")


def test_the_fee_payer_creates_three_wallet_accounts_per_account_unless_set(env):
    assert Settings.from_env().withdrawal_account_creations_max == 3
    env.setenv("DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX", "0")
    assert settlement_config(Settings.from_env()).wallet_account_creations_max == 0
    for bad in ("-1", "1.5"):
        assert refusal(env, DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX=bad).startswith(
            "DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX: ")


def test_a_dotenv_file_is_read_and_the_environment_wins(env, tmp_path):
    (tmp_path / ".env").write_text('DEALS_PORT=9002\nDEALS_HOST="0.0.0.0"\nOTHER=x\n')
    env.setenv("DEALS_HOST", "127.0.0.2")
    settings = Settings.from_env()
    assert (settings.port, settings.host) == (9002, "127.0.0.2")


def test_an_empty_variable_counts_as_unset(env):
    env.setenv("DEALS_PORT", "")
    env.setenv("DEALS_DATABASE_URL", "")
    settings = Settings.from_env()
    assert settings.port == 8000 and settings.database_url is None


def test_keyword_settings_ignore_the_environment(env):
    env.setenv("DEALS_PORT", "9003")
    assert Settings().port == 8000
    assert Settings(data_dir=Path("x"), port=1).port == 1


def test_a_bad_number_names_the_variable_and_the_value(env):
    message = refusal(env, DEALS_PORT="abc")
    assert message == "DEALS_PORT: expected a whole number (got 'abc')"


def test_a_choice_names_the_accepted_values(env):
    message = refusal(env, DEALS_SETTLEMENT_COMMITMENT="final", DEALS_PROJECTIONS="maybe")
    assert "DEALS_SETTLEMENT_COMMITMENT: Input should be 'processed', 'confirmed' or 'finalized'" \
        in message
    assert "DEALS_PROJECTIONS: expected on/off, true/false, yes/no or 1/0 (got 'maybe')" in message


@pytest.mark.parametrize("name, value", [
    ("DEALS_HEADER_TIMEOUT_S", "0"), ("DEALS_MAX_CONNECTIONS", "-1"), ("DEALS_PORT", "70000"),
    ("DEALS_HEADER_TIMEOUT_S", "inf"), ("DEALS_TRUSTED_PROXIES", "10.0.0.0/8,proxy"),
    ("DEALS_SUSPICIOUS_LARGE_AMOUNT", "1e6"), ("DEALS_SOLANA_MINT", "not-an-address"),
])
def test_out_of_range_values_are_refused_by_name(env, name, value):
    assert refusal(env, **{name: value}).startswith(f"{name}: ")


def test_a_refused_secret_is_never_echoed(env):
    message = refusal(env, DEALS_DATABASE_URL="mysql://ledger:hunter2@db/ledger")
    assert message == "DEALS_DATABASE_URL: must be a postgresql:// URL"


def test_replace_validates(env):
    with pytest.raises(ValueError, match="port"):
        Settings().replace(port=-1)
    assert Settings().replace(port=5).port == 5


def test_the_settings_command_prints_every_variable_with_secrets_redacted(env, capsys):
    env.setenv("DEALS_DATABASE_URL", "postgresql://ledger:hunter2@db.internal:5433/ledger")
    env.setenv("DEALS_REDIS_URL", "redis://:redispw@cache:6379/0")
    env.setenv("DEALS_API_KEYS", "ops:ops-token-123:admin")
    env.setenv("DEALS_ALERT_WEBHOOK_URL", "https://hooks.example/services/T0/B0/tok3n?x=1")
    env.setenv("DEALS_ALERT_WEBHOOK_SECRET", "whsecret")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for secret in ("hunter2", "redispw", "ops-token-123", "tok3n", "whsecret"):
        assert secret not in out
    lines = out.splitlines()
    assert "DEALS_DATABASE_URL=postgresql://ledger:***@db.internal:5433/ledger" in lines
    assert "DEALS_REDIS_URL=redis://:***@cache:6379/0" in lines
    assert "DEALS_API_KEYS=***" in lines
    assert "DEALS_ALERT_WEBHOOK_URL=https://hooks.example/***?***" in lines
    assert "DEALS_PORT=8000" in lines and "DEALS_PROJECTIONS=on" in lines
    assert "DEALS_SUSPICIOUS_LARGE_AMOUNT=1000000" in lines  # in DEAL, as it is set
    assert "DEALS_SOLANA_RPC_URL=" in lines  # unset settings are listed too
    assert len(lines) == len(Settings.model_fields)


def test_the_settings_command_as_json(env, capsys):
    env.setenv("DEALS_PORT", "9004")
    assert main(["settings", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["DEALS_PORT"] == 9004 and shown["DEALS_DATABASE_URL"] is None


def test_a_refused_setting_fails_the_command_with_one_line(env, capsys):
    env.setenv("DEALS_PORT", "abc")
    assert main(["settings"]) != 0
    err = capsys.readouterr().err
    assert err == "deals-ledger: setting refused: DEALS_PORT: expected a whole number (got 'abc')\n"


def test_what_the_settings_command_prints_reads_back_as_the_same_settings(env, capsys):
    env.setenv("DEALS_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    env.setenv("DEALS_SUSPICIOUS_LARGE_AMOUNT", "2500.5")
    env.setenv("DEALS_PROJECTIONS", "off")
    original = Settings.from_env()
    assert main(["settings"]) == 0
    for line in capsys.readouterr().out.splitlines():
        name, _, value = line.partition("=")
        env.setenv(name, value)
    assert Settings.from_env() == original


@pytest.mark.parametrize("url", ["http://x", "x:6379", "redis:/cache"])
def test_a_redis_url_redis_cannot_open_is_refused_by_name(env, capsys, url):
    """It passed `deals-ledger settings` and killed `serve` with a traceback."""
    env.setenv("DEALS_REDIS_URL", url)
    assert main(["settings"]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DEALS_REDIS_URL: must be a redis://" in err


@pytest.mark.parametrize("url", ["redis://:pw@cache:6379/0", "rediss://cache", "unix:///run/r.sock"])
def test_the_redis_schemes_are_accepted(env, url):
    env.setenv("DEALS_REDIS_URL", url)
    assert Settings.from_env().redis_url == url


def test_a_misspelt_variable_is_named_with_the_closest_setting_and_ignored(env, capsys):
    """DEALS_PRT=1 was silently ignored: a warning names it and the setting
    meant; the command still runs (a newer version's variable must not stop
    an older one)."""
    env.setenv("DEALS_PRT", "1")
    env.setenv("DEALS_PROJECTION", "off")
    env.setenv("DEALS_REQUIRE_SERVICES", "1")  # the tests' own: not a typo
    assert main(["settings"]) == 0
    err = capsys.readouterr().err
    assert "DEALS_PRT is not a setting and is ignored; did you mean DEALS_PORT?" in err
    assert "DEALS_PROJECTION is not a setting and is ignored; did you mean DEALS_PROJECTIONS?" in err
    assert "DEALS_REQUIRE_SERVICES" not in err


def test_a_priority_price_that_could_exceed_its_cap_stops_the_start(env, capsys):
    """At the chain's largest limit (1,400,000 units) 50,000 micro-lamports a
    unit cost 70,000 lamports: a cap of 69,999 is refused, 70,000 runs."""
    env.setenv("DEALS_PRIORITY_FEE_MICROLAMPORTS", "50000")
    env.setenv("DEALS_PRIORITY_FEE_CAP_LAMPORTS", "70000")
    assert Settings.from_env().priority_fee_micro_lamports == 50_000
    env.setenv("DEALS_PRIORITY_FEE_CAP_LAMPORTS", "69999")
    assert main(["settings"]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "DEALS_PRIORITY_FEE_CAP_LAMPORTS: a price of 50000 micro-lamports per unit may cost " \
        "70000 lamports" in err and "the price may be at most 49999" in err


def test_a_priority_price_or_cap_above_a_u64_stops_the_start(env, capsys):
    """SetComputeUnitPrice carries a u64 and balances are u64: a price of
    2^64 under a cap of 10^20 fits the cap arithmetic but can never be
    sent, so the start refuses it (exit 78) rather than pausing settlement
    for ever on a fee no fee payer can hold."""
    env.setenv("DEALS_PRIORITY_FEE_MICROLAMPORTS", str(2**64))
    env.setenv("DEALS_PRIORITY_FEE_CAP_LAMPORTS", str(10**20))
    assert main(["settings"]) == 78
    assert "must be at most 18446744073709551615 (a u64)" in capsys.readouterr().err
    env.setenv("DEALS_PRIORITY_FEE_MICROLAMPORTS", "0")
    assert main(["settings"]) == 78
    assert "cap 100000000000000000000" in capsys.readouterr().err
