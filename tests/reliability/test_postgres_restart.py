"""PostgreSQL stopped and started again under load, once cleanly (``fast``)
and once as a crash (``immediate``), on a server the test runs itself: while
it is down /ready says so and commands either wait out the library's bounded
reconnect attempts or answer 503 (not applied); once it is back the service
carries on by itself, with no restart, and the log holds every acknowledged
command exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interface.wiring.settings import Settings
from tests.reliability.conftest import service_settings
from tests.reliability.guarantees import recover_then_assert_guarantees
from tests.reliability.load import load_against
from tests.support.http import ThreadServer, wait_until
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

ACKNOWLEDGED_BETWEEN = 80


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


def test_postgres_restarted_mid_load_loses_and_doubles_nothing(
    own_postgres: PostgresServer, shared_redis, tmp_path: Path
):
    url, prefix = shared_redis
    settings = service_settings(
        Settings(data_dir=tmp_path / "var", database_url=own_postgres.create_database("ledger")),
        redis_url=url, redis_prefix=prefix,
    )
    server = ThreadServer(settings).start()
    try:
        with server.client() as admin:
            with load_against(server.url, admin) as run:
                load = run.load
                for round_, mode in enumerate(("fast", "immediate"), start=1):
                    load.wait_for_acknowledged(round_ * ACKNOWLEDGED_BETWEEN)
                    own_postgres.stop(mode)
                    wait_until(lambda: admin.get("/ready").status_code == 503, 30,
                               f"the service to see PostgreSQL down ({mode})")
                    own_postgres.start()
                load.wait_for_acknowledged(3 * ACKNOWLEDGED_BETWEEN)
            recover_then_assert_guarantees(settings.eventsourcing_env(), run, admin, server.url)
    finally:
        server.stop()
