"""``token_balances{account_kind}`` and ``circulating_supply_deal`` come from
the read models when scraped: a process started over an existing ledger,
projecting nothing itself, shows the right values at once (they were gauges
set only from the accounts a projected page changed: 0 or absent after a
restart)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from domain.amounts import INITIAL_SUPPLY, UNITS_PER_DEAL
from domain.system import REWARDS_FUNDING
from interface.cli import exit_codes
from tests.interface.cli_support import cli, cli_env
from tests.support.http import ServeProcess


def scraped(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "token_balances":
                values[sample.labels["account_kind"]] = sample.value
            elif sample.name == "circulating_supply_deal":
                values["circulating_supply_deal"] = sample.value
    return values


def test_a_fresh_process_scrapes_the_system_balances_of_an_existing_ledger(
        service_ledger, store, tmp_path):
    service_ledger.open_account(7 * UNITS_PER_DEAL)  # minted: 7 DEAL more in circulation
    service_ledger.close()
    projected = cli(store, "project", "--once")
    assert projected.returncode == exit_codes.OK, projected.stderr
    env = {**cli_env(store), "DEALS_PROJECTIONS": "off", "DEALS_SETTLEMENT": "off"}
    server = ServeProcess(tmp_path / "serve", env)
    try:
        values = scraped(server.url)
    finally:
        server.terminate()
    circulating = (INITIAL_SUPPLY + 7 * UNITS_PER_DEAL) / UNITS_PER_DEAL
    assert values == {
        "treasury": (INITIAL_SUPPLY - REWARDS_FUNDING) / UNITS_PER_DEAL,
        "rewards_pool": REWARDS_FUNDING / UNITS_PER_DEAL,
        "circulating_supply": circulating, "circulating_supply_deal": circulating,
    }
