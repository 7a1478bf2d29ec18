"""``/metrics`` tells the truth about a settler it does not run: a
``deals-ledger settle`` worker SIGKILLed shows as no settler at once (its
last gauge values, left in the shared PROMETHEUS_MULTIPROC_DIR, used to say
``settlement_settler_active 1`` for good), and what waits for the chain
goes on growing instead of freezing. Real processes on both stores."""

from __future__ import annotations

import re

import httpx

from tests.interface.cli_support import cli_env
from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.reliability.processes import WorkerProcess
from tests.support.http import ADMIN, API_KEYS, ServeProcess, wait_until

CHANGE_TIMEOUT_S = 60


def scraped(url: str, name: str) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match.group(1))


def test_a_killed_settler_is_reported_dead_and_its_backlog_keeps_counting(store, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**cli_env(store), "DEALS_API_KEYS": API_KEYS, "DEALS_SETTLEMENT": "off",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = ServeProcess(tmp_path / "serve", env)
    worker = WorkerProcess(tmp_path / "settle", env, "settle")
    try:
        wait_until(lambda: scraped(server.url, "settlement_settler_active") == 1.0,
                   CHANGE_TIMEOUT_S, "the worker's settler to show as active")
        worker.kill()  # SIGKILL: nothing of it runs to set anything back
        wait_until(lambda: scraped(server.url, "settlement_settler_active") == 0.0,
                   CHANGE_TIMEOUT_S, "the killed settler to show as gone")
        lag_before = scraped(server.url, "deals_ledger_settlement_lag_events")
        assert lag_before is not None
        with server.client(ADMIN) as admin:
            moved = admin.post("/v1/transfers",
                               json=transfer_body(funded_account(admin), open_account(admin)))
            assert moved.status_code == 201, moved.text
        lag_after = scraped(server.url, "deals_ledger_settlement_lag_events")
        assert lag_after is not None and lag_after > lag_before
        assert scraped(server.url, "settlement_backlog") is not None
        assert scraped(server.url, "settlement_settler_active") == 0.0
    finally:
        worker.kill()
        server.terminate()
