"""The service's PostgreSQL connections terminated (pg_terminate_backend),
again and again, in the middle of a load: the service heals by itself, no
restart, and loses, doubles and half-applies nothing."""

from __future__ import annotations

import pytest

from tests.reliability.guarantees import recover_then_assert_guarantees
from tests.reliability.load import load_against
from tests.support.http import ThreadServer
from tests.support.services import pg_connect

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

TERMINATIONS = 3
ACKNOWLEDGED_BETWEEN = 80


def terminate_backends(database: str) -> int:
    """Every connection to the database but our own: the service's pools,
    its projector's and its settler's (and their advisory locks)."""
    with pg_connect(database) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall()
    return len(rows)


def test_terminated_connections_mid_load_heal_without_restart(pg_service):
    database = pg_service.database_url.rsplit("/", 1)[1]
    server = ThreadServer(pg_service).start()
    try:
        with server.client() as admin:
            with load_against(server.url, admin) as run:
                load = run.load
                for round_ in range(1, TERMINATIONS + 1):
                    load.wait_for_acknowledged(round_ * ACKNOWLEDGED_BETWEEN)
                    assert terminate_backends(database) > 0
                load.wait_for_acknowledged((TERMINATIONS + 1) * ACKNOWLEDGED_BETWEEN)
            recover_then_assert_guarantees(pg_service.eventsourcing_env(), run, admin, server.url)
    finally:
        server.stop()
