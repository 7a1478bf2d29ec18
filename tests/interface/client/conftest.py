"""A real ``deals-ledger serve`` per test module, once on the embedded
SQLite default and once on PostgreSQL with Redis, for the client to talk to
as a calling service would (settlement on the embedded chain included)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from interface.client import LedgerClient
from tests.interface.conftest import delete_redis_keys
from tests.support.http import ADMIN, API_KEYS, ServeProcess
from tests.support.services import unreachable

GENEROUS_LIMITS = {"DEALS_RATE_LIMIT_PER_S": "100000", "DEALS_RATE_LIMIT_BURST": "100000"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("serve")
    env = {"DEALS_API_KEYS": API_KEYS, **GENEROUS_LIMITS}
    cleanup = lambda: None  # noqa: E731
    if request.param == "postgres":
        database = request.getfixturevalue("postgres_database")
        if isinstance(database, Exception):
            unreachable("PostgreSQL", database)
        redis_url = request.getfixturevalue("redis_url")
        schema, prefix = database.new_schema(), f"deals-test:{uuid.uuid4().hex[:12]}:"
        env |= {"DEALS_DATABASE_URL": database.url, "DEALS_POSTGRES_SCHEMA": schema,
                "DEALS_REDIS_URL": redis_url, "DEALS_REDIS_PREFIX": prefix}

        def cleanup() -> None:
            database.drop_schema(schema)
            delete_redis_keys(redis_url, prefix)

    server = ServeProcess(workdir, env)
    try:
        yield server
    finally:
        server.terminate()
        cleanup()


@pytest.fixture
def client(served) -> Iterator[LedgerClient]:
    """An admin client of the module's server."""
    with LedgerClient(served.url, ADMIN) as client:
        yield client
