"""PostgreSQL down: commands answer 503 unavailable and apply nothing; once
the store is back, the very same request succeeds, once.

The store is broken for real: the service logs in as a role of its own,
which the test then forbids to log in and whose connections it terminates;
no part of PostgreSQL is mocked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.interface.helpers import assert_error, funded_account, open_account, transfer_body
from tests.support.http import ThreadServer, wait_until
from tests.support.log import debits_by_transfer
from tests.support.services import PG_HOST, PG_PORT, pg_connect


class BreakableRole:
    def __init__(self, database_name: str, schema: str) -> None:
        self.name = f"svc_{uuid.uuid4().hex[:10]}"
        self.database_name = database_name
        with pg_connect(database_name) as conn:
            conn.execute(f'CREATE ROLE "{self.name}" LOGIN')
            conn.execute(f'GRANT ALL ON SCHEMA "{schema}" TO "{self.name}"')

    def url(self) -> str:
        return f"postgresql://{self.name}@{PG_HOST}:{PG_PORT}/{self.database_name}"

    def break_(self) -> None:
        with pg_connect(self.database_name) as conn:
            conn.execute(f'ALTER ROLE "{self.name}" NOLOGIN')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (self.name,))

    def repair(self) -> None:
        with pg_connect(self.database_name) as conn:
            conn.execute(f'ALTER ROLE "{self.name}" LOGIN')

    def drop(self) -> None:
        with pg_connect(self.database_name) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (self.name,))
            conn.execute(f'DROP OWNED BY "{self.name}" CASCADE')
            conn.execute(f'DROP ROLE "{self.name}"')


@pytest.fixture
def breakable(postgres_database, make_settings) -> Iterator[tuple[ThreadServer, BreakableRole]]:
    settings = make_settings("postgres")
    role = BreakableRole(postgres_database.name, settings.postgres_schema)
    server = ThreadServer(settings.replace(database_url=role.url())).start()
    try:
        yield server, role
    finally:
        role.repair()
        server.stop()
        role.drop()


def _not_unavailable(response):
    return None if response.status_code == 503 else response


def test_a_command_while_the_store_is_down_is_unavailable_and_succeeds_after(breakable):
    server, role = breakable
    with server.client() as admin:
        source, destination = funded_account(admin, "10"), open_account(admin)
        body = transfer_body(source, destination, "4")
        role.break_()
        try:
            refused = admin.post("/v1/transfers", json=body)
            error = assert_error(refused, 503, "unavailable")
            assert "not applied" in error["message"] or "retry" in error["message"]
            assert int(refused.headers["retry-after"]) >= 1
            assert_error(admin.get("/ready"), 503, "unavailable")
            assert_error(admin.get("/v1/system"), 503, "unavailable")
        finally:
            role.repair()
        # A client honours Retry-After; the service notices the store is back
        # within its probe interval (about a second).
        accepted = wait_until(lambda: _not_unavailable(admin.post("/v1/transfers", json=body)),
                              10, "the store seen back", interval_s=0.25)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["to_balance"] == "4"
        assert admin.post("/v1/transfers", json=body).status_code == 200
        # Ready again once the projector, which retries on its own, caught up.
        wait_until(lambda: admin.get("/ready").status_code == 200, 60, "/ready")
        balance = admin.get(f"/v1/accounts/{destination}/balance",
                            params={"min_position": accepted.json()["position"]})
        assert balance.status_code == 200 and balance.json()["balance"] == "4"
    assert debits_by_transfer(server.service.app)[UUID(body["transfer_id"])] == 1
