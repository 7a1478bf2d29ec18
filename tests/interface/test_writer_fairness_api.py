"""Issue 13 over HTTP, on SQLite and on PostgreSQL: a write key sends one
large batch and then dozens of atomic batches that each hold one refused
item, while other callers transfer between their own accounts. The other
callers get no 503 (the store is healthy); the attacker gets its own
refusals. Statuses and counts only: how long the victims waited is the
benchmark's business (``benchmarks/suite.py``, scenario 8)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

import httpx

from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.support.http import READ_WRITE, WRITER, bearer
from tests.support.writer_counts import WriterCounts

BIG_BATCH_ITEMS = 6000
BAD_ATOMIC_BATCHES = 50
VICTIM_CONNECTIONS = 4
VICTIM_TRANSFERS_MIN = 5
"""Each victim connection sends at least this many, and goes on until the
attack is answered."""
TIMEOUT_S = 300  # generous for a busy machine; no latency is asserted


def _client(api, token: str) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers=bearer(token), timeout=TIMEOUT_S)


def _victim(api, source: str, destination: str, attack_over: threading.Event) -> list[int]:
    statuses: list[int] = []
    with _client(api, READ_WRITE) as client:
        while len(statuses) < VICTIM_TRANSFERS_MIN or not attack_over.is_set():
            response = client.post("/v1/transfers", json=transfer_body(source, destination))
            statuses.append(response.status_code)
    return statuses


def _attack_body(rich: list[str], items: int) -> dict:
    return {"transfers": [transfer_body(rich[i % 2], rich[2 + i % 2], "0.00000001")
                          for i in range(items)], "atomic": False}


def _bad_atomic_body(rich: list[str], poor: str) -> dict:
    return {"transfers": [transfer_body(rich[0], rich[1], "0.00000001"),
                          transfer_body(poor, rich[2], "5")], "atomic": True}


def _post(api, body: dict) -> httpx.Response:
    with _client(api, WRITER) as client:
        return client.post("/v1/transfers/batch", json=body)


def test_a_write_keys_bad_atomic_batches_do_not_starve_other_callers(api, admin):
    rich = [funded_account(admin, "1000") for _ in range(4)]
    poor = open_account(admin)
    victims = [funded_account(admin, "1000") for _ in range(2 * VICTIM_CONNECTIONS)]
    counts = WriterCounts()
    attack_over = threading.Event()
    with ThreadPoolExecutor(1 + BAD_ATOMIC_BATCHES + VICTIM_CONNECTIONS) as pool:
        honest = [pool.submit(_victim, api, victims[2 * i], victims[2 * i + 1], attack_over)
                  for i in range(VICTIM_CONNECTIONS)]
        big = pool.submit(_post, api, _attack_body(rich, BIG_BATCH_ITEMS))
        bad = [pool.submit(_post, api, _bad_atomic_body(rich, poor))
               for _ in range(BAD_ATOMIC_BATCHES)]
        _, not_done = wait([big, *bad], TIMEOUT_S)
        attack_over.set()
        assert not not_done
        statuses = [status for victim in honest for status in victim.result(TIMEOUT_S)]

    assert set(statuses) == {201}, sorted(set(statuses))
    assert big.result().status_code == 200, big.result().text
    for response in (f.result() for f in bad):
        assert response.status_code == 402, response.text
        error = response.json()["error"]
        assert error["code"] == "insufficient_balance" and error["item_index"] == 1
    counts = counts.since()
    assert counts["redecides_lost_commit"] == 0 and counts["turns"] == 0
    assert counts["redeciding_refusals"] == counts["redecides_refused_midway"]
    assert counts["redeciding_refusals"] <= BAD_ATOMIC_BATCHES
    assert counts["answered"] >= 1 + BAD_ATOMIC_BATCHES + len(statuses)
    assert counts["retried_0"] == counts["answered"], "bad batches go first: none decided twice"
    exposed = admin.get("/metrics").text
    for series in ('deals_ledger_writer_redecides_total{cause="refused_midway"}',
                   'deals_ledger_writer_redecides_total{cause="lost_commit"}',
                   "deals_ledger_writer_redeciding_refusals_total",
                   "deals_ledger_writer_command_retries_bucket", "deals_ledger_writer_sent_on_total",
                   "deals_ledger_writer_turns_total"):
        assert series in exposed, series
