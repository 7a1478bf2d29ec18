"""Redis stopped and started, then paused (SIGSTOP: a Redis that hangs,
its stale entries still there) and resumed, under load: commands never
notice, balance reads keep answering from SQL, and once Redis is back the
cache is written again so that it agrees with the read models (the audit
replay compares every cached entry). Nothing restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.guarantees import assert_guarantees
from tests.reliability.load import load_against, retry_unknown
from tests.support.http import ThreadServer, wait_until
from tests.support.services import RedisServer

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

ACKNOWLEDGED_BETWEEN = 60


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.close()


def balances_answer(admin, accounts: list[str]) -> bool:
    """Reads without min_position: the ones the cache would serve."""
    return all(admin.get(f"/v1/accounts/{a}/balance").status_code == 200 for a in accounts)


def test_redis_down_or_hung_mid_load_changes_no_answer_and_heals(pg_service, own_redis):
    settings = pg_service.replace(redis_url=own_redis.url)
    server = ThreadServer(settings).start()
    try:
        with server.client() as admin:
            with load_against(server.url, admin) as run:
                load, accounts = run.load, run.accounts
                load.wait_for_acknowledged(ACKNOWLEDGED_BETWEEN)
                wait_until(lambda: own_redis_keys(own_redis), 30, "balances cached in Redis")

                own_redis.stop()
                load.wait_for_acknowledged(2 * ACKNOWLEDGED_BETWEEN)
                assert balances_answer(admin, accounts)
                own_redis.start()
                wait_until(lambda: own_redis_keys(own_redis), 30, "balances cached again")

                own_redis.pause()
                load.wait_for_acknowledged(3 * ACKNOWLEDGED_BETWEEN)
                assert balances_answer(admin, accounts)
                own_redis.resume()
                load.wait_for_acknowledged(4 * ACKNOWLEDGED_BETWEEN)
            book = run.book
            assert not book.surprises, ("Redis is never in a command's path", book.surprises)
            cache = server.service.read_side.cache
            wait_until(lambda: not cache.needs_resync, 30,
                       "the cache resynchronised, with no command to trigger it")
            retry_unknown(book, server.url)
            assert_guarantees(settings.eventsourcing_env(), book, accounts, admin)
    finally:
        server.stop()


def own_redis_keys(server: RedisServer) -> int:
    import redis

    client = redis.Redis.from_url(server.url, socket_timeout=2)
    try:
        return sum(1 for _ in client.scan_iter(match="*balance:*"))
    finally:
        client.close()
