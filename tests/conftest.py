"""Shared fixtures: every store-backed test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.support.alerts import CollectedAlerts, collecting_alerts
from tests.support.ledgers import LedgerHarness
from tests.support.services import PostgresTestDatabase, unreachable
from tests.support.stores import StoreConfig, postgres_store, sqlite_store

# Property tests in CI are derandomized: the same examples every run, so a
# red CI names a real counterexample rather than a lucky draw, and its time
# is the same from run to run. Each test bounds its own examples. On a
# developer machine they explore (HYPOTHESIS_PROFILE=dev, the default there).
hypothesis_settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("DEALS_REQUIRE_SERVICES") == "1" else "dev")
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresTestDatabase | Exception]:
    try:
        database = PostgresTestDatabase()
    except Exception as error:  # reported per test, where it fails or skips
        yield error
        return
    yield database
    database.drop()


@pytest.fixture
def postgres(postgres_database, tmp_path: Path) -> Iterator[StoreConfig]:
    if isinstance(postgres_database, Exception):
        unreachable("PostgreSQL", postgres_database)
    schema = postgres_database.new_schema()
    yield postgres_store(tmp_path, postgres_database.url, schema)
    postgres_database.drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path: Path) -> StoreConfig:
    if request.param == "sqlite":
        return sqlite_store(tmp_path)
    return request.getfixturevalue("postgres")


@pytest.fixture
def ledger(store: StoreConfig) -> Iterator[LedgerHarness]:
    ledger = LedgerHarness(store.env)
    yield ledger
    ledger.close()


@pytest.fixture
def service_ledger(store: StoreConfig) -> Iterator[LedgerHarness]:
    """The write side opened as every process of the service opens it
    (``open_ledger``: sealing with the key in the store's data dir), for
    tests whose ``deals-ledger`` subprocesses read what it writes."""
    from interface.wiring.seal_keys import open_ledger

    ledger = LedgerHarness(store.env, app=open_ledger(store.settings))
    yield ledger
    ledger.close()


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test(request):
    """A projector, writer or sweeper left running by one test would keep
    changing process-wide state (metrics) under the next one."""
    import threading

    before = set(threading.enumerate())
    yield
    names = ("projector-", "command-writer", "hold-expiry")
    leaked = [t for t in set(threading.enumerate()) - before
              if t.name.startswith(names) and t.is_alive()]
    for thread in leaked:
        thread.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running by {request.node.name}: {still}"


@pytest.fixture
def raised() -> Iterator[CollectedAlerts]:
    """The alerts the test's code raises."""
    yield from collecting_alerts()
