"""The store probe tells a store that is down from one that is slow or full:
a single failed probe, or a server at its connection limit, must not turn
every command into 503 while the pool can still serve them."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from interface.wiring import store_health
from interface.wiring.store_health import StoreHealth
from tests.support.services import PG_HOST, PG_PORT, PG_USER, pg_connect


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def full_role(postgres_database) -> Iterator[str]:
    """A role the server refuses every new session to with SQLSTATE 53300, as
    a server at its connection limit does."""
    role = f"full_{uuid.uuid4().hex[:10]}"
    with pg_connect(postgres_database.name) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    yield role
    with pg_connect(postgres_database.name) as conn:
        conn.execute(f'DROP ROLE "{role}"')


def test_a_full_server_is_up(full_role, postgres_database) -> None:
    health = StoreHealth({"host": PG_HOST, "port": PG_PORT, "user": full_role,
                          "dbname": postgres_database.name})
    for _ in range(store_health.FAILED_PROBES_DOWN + 1):
        assert health.probe()
    assert not health.down


def test_only_consecutive_failed_probes_make_the_store_down(raised, postgres_database) -> None:
    unreachable = {"host": "127.0.0.1", "port": closed_port(), "user": PG_USER, "dbname": "x"}
    health = StoreHealth(unreachable)
    for _ in range(store_health.FAILED_PROBES_DOWN - 1):
        assert not health.probe()
        assert not health.down
    assert not health.probe()
    assert health.down
    assert [alert.kind for alert in raised.alerts] == ["store_unreachable"]

    health._conninfo = {"host": PG_HOST, "port": PG_PORT, "user": "root",
                        "dbname": postgres_database.name}
    assert health.probe() and not health.down
    health._conninfo = unreachable
    assert not health.probe() and not health.down  # the count starts over
