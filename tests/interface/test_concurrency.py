"""The same command sent many times at once moves money exactly once: within
one server, and across two worker processes sharing PostgreSQL."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import httpx

from application.write.event_store import LedgerApplication
from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.support.http import ADMIN, API_KEYS, ServeProcess, bearer
from tests.support.log import debits_by_transfer

COPIES = 32


def send_copies(url: str, body: dict, copies: int = COPIES) -> list[httpx.Response]:
    def send(_: int) -> httpx.Response:
        return httpx.post(f"{url}/v1/transfers", json=body, headers=bearer(ADMIN), timeout=60)

    with ThreadPoolExecutor(copies) as pool:
        return list(pool.map(send, range(copies)))


def test_concurrent_copies_of_one_transfer_apply_it_exactly_once(api):
    with api.client() as admin:
        source, destination = funded_account(admin, "10"), open_account(admin)
    body = transfer_body(source, destination, "3")
    responses = send_copies(api.url, body)
    assert Counter(r.status_code for r in responses) == {201: 1, 200: COPIES - 1}
    assert len({r.content for r in responses}) == 1
    assert debits_by_transfer(api.service.app)[UUID(body["transfer_id"])] == 1
    assert api.service.app.account(UUID(destination)).balance == 3 * 10**8


def test_copies_across_two_worker_processes_apply_once(tmp_path, postgres):
    settings = postgres.settings
    env = {"DEALS_API_KEYS": API_KEYS, "DEALS_DATABASE_URL": settings.database_url,
           "DEALS_POSTGRES_SCHEMA": settings.postgres_schema, "DEALS_RATE_LIMIT_PER_S": "0"}
    server = ServeProcess(tmp_path, env, "--workers", "2")
    try:
        with server.client(ADMIN) as admin:
            source, destination = funded_account(admin, "10"), open_account(admin)
        bodies = [transfer_body(source, destination, "1") for _ in range(3)]
        for body in bodies:
            responses = send_copies(server.url, body, copies=16)
            assert Counter(r.status_code for r in responses) == {201: 1, 200: 15}, [
                r.text for r in responses if r.status_code not in (200, 201)]
    finally:
        assert server.terminate() == 0
    app = LedgerApplication(settings.eventsourcing_env())
    try:
        debits = debits_by_transfer(app)
        assert [debits[UUID(body["transfer_id"])] for body in bodies] == [1, 1, 1]
        assert app.account(UUID(destination)).balance == 3 * 10**8
    finally:
        app.close()
