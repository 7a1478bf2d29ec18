"""HTTP request metrics per route template, method and status; with
``serve --workers N`` every scrape sums all workers."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from interface.http.app import create_app
from interface.wiring.settings import Settings
from tests.support.http import ServeProcess, wait_until

ACCOUNT = "a11ce000-0000-4000-8000-0000000000ff"


def count(route: str, method: str, status: str) -> float:
    found = REGISTRY.get_sample_value(
        "deals_ledger_http_requests_total", {"route": route, "method": method, "status": status})
    return found or 0.0


def test_requests_are_counted_by_route_template_method_and_status():
    client = TestClient(create_app(Settings(data_dir=Path("unused"), api_keys="k:token:admin")))
    balance = "/v1/accounts/{account_id}/balance"
    before = (count(balance, "GET", "401"), count("<unmatched>", "GET", "404"),
              count("/docs", "GET", "200"), count("/health", "OTHER", "405"))
    client.get(f"/v1/accounts/{ACCOUNT}/balance")
    client.get(f"/no/such/{ACCOUNT}")
    client.get("/docs")
    client.request("BREW", "/health")
    after = (count(balance, "GET", "401"), count("<unmatched>", "GET", "404"),
             count("/docs", "GET", "200"), count("/health", "OTHER", "405"))
    assert after == tuple(n + 1 for n in before)
    seconds = REGISTRY.get_sample_value("deals_ledger_http_request_duration_seconds_count",
                                        {"route": balance, "method": "GET"})
    assert seconds and seconds >= 1
    exposed = client.get("/metrics").text
    assert ACCOUNT not in exposed  # a label never holds an id


def _scraped(server: ServeProcess) -> float | None:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r'^deals_ledger_http_requests_total\{method="GET",'
                      r'route="/openapi.json",status="200"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def test_serve_with_workers_sums_every_worker_in_each_scrape(tmp_path):
    server = ServeProcess(tmp_path, {}, "--workers", "2")
    try:
        for _ in range(12):  # a connection each, so the workers share them
            httpx.get(f"{server.url}/openapi.json", timeout=30)
        wait_until(lambda: _scraped(server) == 12.0, 30, "a scrape with all 12 requests")
        scrapes = [_scraped(server) for _ in range(6)]  # whichever worker answers each
    finally:
        server.terminate()
    assert scrapes == [12.0] * 6, scrapes
