"""Servers for the reliability tests: PostgreSQL (the shared one, or one the
test starts itself), Redis and settlement all on, as in production."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from interface.wiring.settings import Settings
from tests.interface.conftest import delete_redis_keys
from tests.support.http import API_KEYS
from tests.support.services import REDIS_URL, redis_client
from tests.support.stores import StoreConfig

FAST_SETTLEMENT = {"settlement_poll_interval_s": 0.01, "reconcile_interval_s": 0.0}
NO_RATE_LIMIT = {"rate_limit_per_s": 0.0}


def service_settings(base: Settings, **overrides) -> Settings:
    """The settings of a service under test: keys, no rate limit (the load
    is the point), settlement polling fast enough for a test's budget."""
    return base.replace(api_keys=API_KEYS, **{**NO_RATE_LIMIT, **FAST_SETTLEMENT, **overrides})


@pytest.fixture
def shared_redis() -> Iterator[tuple[str, str]]:
    """(url, key prefix) on the shared Redis; the prefix's keys are deleted after."""
    redis_client().close()
    prefix = f"deals-test:{uuid.uuid4().hex[:12]}:"
    yield REDIS_URL, prefix
    delete_redis_keys(REDIS_URL, prefix)


@pytest.fixture
def pg_service(postgres: StoreConfig, shared_redis, tmp_path: Path) -> Settings:
    """A service on the run's PostgreSQL database (a schema of its own) and
    the shared Redis, settling on the embedded chain in its data dir."""
    url, prefix = shared_redis
    return service_settings(postgres.settings, redis_url=url, redis_prefix=prefix)


def serve_env(settings: Settings) -> dict[str, str]:
    """The environment of ``deals-ledger`` processes for these settings."""
    env = {
        "DEALS_API_KEYS": API_KEYS, "DEALS_RATE_LIMIT_PER_S": "0",
        "DEALS_DATA_DIR": str(settings.data_dir),
        "DEALS_SETTLEMENT_POLL_INTERVAL_S": str(FAST_SETTLEMENT["settlement_poll_interval_s"]),
        "DEALS_RECONCILE_INTERVAL_S": "0",
    }
    if settings.database_url:
        env["DEALS_DATABASE_URL"] = settings.database_url
    if settings.postgres_schema:
        env["DEALS_POSTGRES_SCHEMA"] = settings.postgres_schema
    if settings.redis_url:
        env |= {"DEALS_REDIS_URL": settings.redis_url, "DEALS_REDIS_PREFIX": settings.redis_prefix}
    return env
