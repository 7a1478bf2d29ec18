"""API test servers: the app under uvicorn on a real socket, once on SQLite
(in-process rate limits) and once on PostgreSQL with Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interface.wiring.settings import Settings
from tests.support.http import API_KEYS, ThreadServer
from tests.support.services import REDIS_URL, PostgresTestDatabase, unreachable

GENEROUS_LIMITS = {"rate_limit_per_s": 100_000.0, "rate_limit_burst": 100_000}
NO_WALLET_COOLDOWN = {"withdrawal_wallet_cooldown_s": 0}
"""Tests connect a wallet and withdraw to it at once; the cool-down of new
withdrawal addresses has tests of its own (tests/application/
test_wallet_cooldown.py, and one server in test_withdrawals_api.py)."""
NO_SETTLEMENT = {"settlement_enabled": False, "webhooks_enabled": False}
"""The settler would append settlement events while a test checks that a
refused command wrote nothing; settlement over HTTP has tests of its own.
No webhook is delivered either: schemathesis subscribes URLs it makes up,
and a test server sends nothing off this machine (tests/interface/
test_webhooks.py turns delivery on for its loopback receivers)."""


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:
        unreachable("Redis", error)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of the test's own, deleted afterwards."""
    prefix = f"deals-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_redis_keys(redis_url, prefix)


def delete_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def sqlite_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(data_dir=data_dir, api_keys=API_KEYS,
                    **{**GENEROUS_LIMITS, **NO_SETTLEMENT, **NO_WALLET_COOLDOWN, **overrides})


def postgres_settings(data_dir: Path, database: PostgresTestDatabase, schema: str,
                      redis_url: str, prefix: str, **overrides) -> Settings:
    return Settings(
        data_dir=data_dir, api_keys=API_KEYS, database_url=database.url,
        postgres_schema=schema, redis_url=redis_url, redis_prefix=prefix,
        **{**GENEROUS_LIMITS, **NO_SETTLEMENT, **NO_WALLET_COOLDOWN, **overrides},
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory) -> Iterator[ThreadServer]:
    """One server per store for a test module; tests use fresh ids, so they
    do not see each other's accounts."""
    data_dir = tmp_path_factory.mktemp("api") / "var"
    if request.param == "sqlite":
        settings = sqlite_settings(data_dir)
        cleanup = lambda: None  # noqa: E731
    else:
        database = request.getfixturevalue("postgres_database")
        if isinstance(database, Exception):
            unreachable("PostgreSQL", database)
        url = request.getfixturevalue("redis_url")
        schema, prefix = database.new_schema(), f"deals-test:{uuid.uuid4().hex[:12]}:"
        settings = postgres_settings(data_dir, database, schema, url, prefix)

        def cleanup() -> None:
            database.drop_schema(schema)
            delete_redis_keys(url, prefix)

    server = ThreadServer(settings).start()
    try:
        yield server
    finally:
        server.stop()
        cleanup()


@pytest.fixture
def admin(api) -> Iterator[httpx.Client]:
    """An admin client of the module's server."""
    with api.client() as client:
        yield client


@pytest.fixture
def make_settings(request, tmp_path: Path):
    """Settings for a server of the test's own, on the requested store."""

    def make(kind: str = "sqlite", **overrides) -> Settings:
        if kind == "sqlite":
            return sqlite_settings(tmp_path / "var", **overrides)
        postgres = request.getfixturevalue("postgres")
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        return postgres.settings.replace(api_keys=API_KEYS, redis_url=url, redis_prefix=prefix,
            **{**GENEROUS_LIMITS, **NO_WALLET_COOLDOWN, **overrides})

    return make
