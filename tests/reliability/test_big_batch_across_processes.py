"""Issue 13 across processes: two ``deals-ledger serve`` processes on one
PostgreSQL schema. A write key sends a 6,000-item non-atomic batch, and
atomic batches that each hold one refused item, to the first process while
other callers send ordinary transfers to the second. The batch is committed
in chunks (``application.write.chunks``), so the table lock and the writer
turn are free between them and the second process's commits interleave:
no victim gets a 503, each victim's transfer is applied exactly once, money
is conserved, and the batch took ``ceil(6000 / chunk)`` commits (counted
in the log, by commit stamp, and by the first process's metric). Statuses
and counts only: the victims' latency is the benchmark's (scenario 9)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from eventsourcing.utils import get_topic

from application.write.chunks import BATCH_CHUNK_ITEMS
from application.write.event_store import LedgerApplication
from domain.transfer import Transfer
from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.reliability.conftest import serve_env
from tests.reliability.guarantees import assert_invariants
from tests.support.http import ADMIN, READ_WRITE, WRITER, ServeProcess, bearer
from tests.support.log import debits_by_transfer

pytestmark = pytest.mark.slow  # real processes: see pyproject's markers

BIG_BATCH_ITEMS = 6000
BAD_ATOMIC_BATCHES = 40
VICTIM_CONNECTIONS = 4
VICTIM_TRANSFERS_MIN = 5
TIMEOUT_S = 600  # generous for a busy machine; no latency is asserted
CHUNKS_METRIC = "deals_ledger_writer_batch_chunks_total"


@contextmanager
def _two_servers(tmp_path: Path, env: dict[str, str]) -> Iterator[list[ServeProcess]]:
    servers: list[ServeProcess] = []
    try:
        servers += [ServeProcess(tmp_path / f"api-{n}", env) for n in range(2)]
        yield servers
        assert [server.terminate() for server in servers] == [0, 0]
    finally:
        for server in servers:
            server.kill()


def _victim(url: str, accounts: tuple[str, str], over: threading.Event) -> dict[str, int]:
    """Transfers sent to ``url`` until the attack is answered: id -> status."""
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=url, headers=bearer(READ_WRITE), timeout=TIMEOUT_S) as client:
        while len(statuses) < VICTIM_TRANSFERS_MIN or not over.is_set():
            body = transfer_body(*accounts, "0.001")
            statuses[body["transfer_id"]] = client.post("/v1/transfers", json=body).status_code
    return statuses


def _post_batch(url: str, body: dict) -> httpx.Response:
    with httpx.Client(base_url=url, headers=bearer(WRITER), timeout=TIMEOUT_S) as client:
        return client.post("/v1/transfers/batch", json=body)


def _bad_atomic(rich: list[str], poor: str) -> dict:
    return {"atomic": True, "transfers": [transfer_body(rich[0], rich[1], "0.00000001"),
                                          transfer_body(poor, rich[2], "5")]}


def _attack(url: str, rich: list[str], poor: str, pool: ThreadPoolExecutor) -> list:
    big = {"transfers": [transfer_body(rich[i % 2], rich[2 + i % 2], "0.00000001")
                         for i in range(BIG_BATCH_ITEMS)], "atomic": False}
    return [pool.submit(_post_batch, url, big)] + [
        pool.submit(_post_batch, url, _bad_atomic(rich, poor)) for _ in range(BAD_ATOMIC_BATCHES)]


def _chunks_committed(server: ServeProcess) -> float:
    text = httpx.get(f"{server.url}/metrics", headers=bearer(ADMIN), timeout=30).text
    match = re.search(rf"^{CHUNKS_METRIC} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _commit_stamps(env: dict[str, str], ids: set[UUID]) -> set[object]:
    """The commit stamps (one per group commit) of the transfers ``ids``."""
    app = LedgerApplication(env)
    stamps, start = set(), 1
    try:
        while True:
            page = app.recorder.select_notifications(
                start=start, limit=1000, topics=[get_topic(Transfer.Recorded)])
            if not page:
                return stamps
            for notification in page:
                event = app.mapper.to_domain_event(notification)
                if event.originator_id in ids:
                    stamps.add(event.timestamp)
            start = page[-1].id + 1
    finally:
        app.close()


def test_a_big_batch_on_one_process_does_not_starve_commands_on_another(pg_service, tmp_path):
    env = serve_env(pg_service) | {"DEALS_SETTLEMENT": "off"}
    with _two_servers(tmp_path, env) as (attacked, other):
        with attacked.client(ADMIN) as admin:
            rich = [funded_account(admin, "1000") for _ in range(4)]
            poor = open_account(admin)
            victims = [funded_account(admin, "1000") for _ in range(2 * VICTIM_CONNECTIONS)]
        chunks_before = _chunks_committed(attacked)
        over = threading.Event()
        with ThreadPoolExecutor(1 + BAD_ATOMIC_BATCHES + VICTIM_CONNECTIONS) as pool:
            honest = [pool.submit(_victim, other.url, (victims[2 * i], victims[2 * i + 1]), over)
                      for i in range(VICTIM_CONNECTIONS)]
            attack = _attack(attacked.url, rich, poor, pool)
            _, not_done = wait(attack, TIMEOUT_S)
            over.set()
            assert not not_done
            sent = {k: v for victim in honest for k, v in victim.result(TIMEOUT_S).items()}
        chunks = _chunks_committed(attacked) - chunks_before

    assert set(sent.values()) == {201}, sorted(sent.values())
    big, *bad = (future.result() for future in attack)
    assert big.status_code == 200 and all(r.status_code == 402 for r in bad), big.text
    assert [item["status"] for item in big.json()["results"]] == ["ok"] * BIG_BATCH_ITEMS
    store_env = pg_service.eventsourcing_env()
    debits = debits_by_transfer_env(store_env)
    assert [debits[UUID(i)] for i in sent] == [1] * len(sent)
    assert_invariants(store_env, rich + [poor] + victims)
    expected = math.ceil(BIG_BATCH_ITEMS / BATCH_CHUNK_ITEMS)
    batch_ids = {UUID(item["transfer_id"]) for item in big.json()["results"]}
    assert len(_commit_stamps(store_env, batch_ids)) == expected
    assert chunks == expected


def debits_by_transfer_env(env: dict[str, str]):
    app = LedgerApplication(env)
    try:
        return debits_by_transfer(app)
    finally:
        app.close()
