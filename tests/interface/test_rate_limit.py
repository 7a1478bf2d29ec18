"""Per-key token buckets: in process, and in Redis shared by several servers."""

from __future__ import annotations

import asyncio

from interface.http.ratelimit import Limit, LocalBuckets, RedisBuckets
from tests.interface.conftest import sqlite_settings
from tests.interface.helpers import assert_error
from tests.support.http import ADMIN, READER, ThreadServer, bearer

SMALL = {"rate_limit_per_s": 0.5, "rate_limit_burst": 3}


def test_a_key_past_its_burst_is_rate_limited_with_retry_after_others_are_not(tmp_path):
    server = ThreadServer(sqlite_settings(tmp_path / "var", **SMALL)).start()
    try:
        with server.client(READER) as reader, server.client(ADMIN) as admin:
            assert [reader.get("/v1/system").status_code for _ in range(3)] == [200] * 3
            limited = reader.get("/v1/system")
            assert_error(limited, 429, "rate_limited")
            assert int(limited.headers["retry-after"]) >= 1
            assert admin.get("/v1/system").status_code == 200
    finally:
        server.stop()


def test_servers_sharing_redis_share_one_bucket_per_key(tmp_path, redis_url, redis_prefix):
    servers = [
        ThreadServer(sqlite_settings(tmp_path / name / "var", redis_url=redis_url,
                                     redis_prefix=redis_prefix, **SMALL)).start()
        for name in ("a", "b")
    ]
    try:
        first, second = servers
        statuses = [
            (server.client(READER).get("/v1/system")).status_code
            for server in (first, second, first)
        ]
        assert statuses == [200, 200, 200]
        limited = second.client(READER).get("/v1/system")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert first.client(ADMIN).get("/v1/system").status_code == 200
    finally:
        for server in servers:
            server.stop()


def test_a_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = LocalBuckets(Limit(rate_per_s=2, burst=2), clock=lambda: now[0])
    assert [buckets.take("k"), buckets.take("k")] == [None, None]
    assert buckets.take("k") == 0.5
    now[0] += 0.5
    assert buckets.take("k") is None
    now[0] += 100
    assert [buckets.take("k"), buckets.take("k"), buckets.take("k") is not None] == [
        None, None, True]


def test_with_redis_unreachable_limits_fall_back_to_the_process():
    async def run() -> list[float | None]:
        buckets = RedisBuckets("redis://127.0.0.1:1/0", Limit(rate_per_s=1, burst=2), "x:")
        try:
            return [await buckets.retry_after_s("k") for _ in range(3)]
        finally:
            await buckets.close()

    first, second, third = asyncio.run(run())
    assert first is None and second is None and third is not None


def test_bearer_helper_formats_the_header():
    assert bearer("t") == {"Authorization": "Bearer t"}
