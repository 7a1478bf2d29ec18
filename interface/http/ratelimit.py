"""Per-key rate limits: a token bucket of ``burst`` tokens refilled at
``rate_per_s``; each request takes one.

With Redis configured the bucket lives there, updated by one Lua script
(atomic, and timed by Redis's own clock), so every API process behind a
load balancer draws from the same bucket. Without Redis the bucket lives in
the process. If Redis stops answering, the process falls back to its own
buckets rather than refusing traffic or letting it through unlimited.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Limit:
    rate_per_s: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0


class RateLimiter(Protocol):
    async def retry_after_s(self, key: str) -> float | None:
        """Take a token for ``key``: None when allowed, else the seconds to wait."""
        ...

    async def close(self) -> None: ...


class Unlimited:
    async def retry_after_s(self, key: str) -> float | None:
        return None

    async def close(self) -> None:
        return None


class LocalBuckets:
    """Buckets in this process. Keys are configured key names, so bounded.
    ``retry_after_s`` never awaits, so it is atomic on the event loop."""

    def __init__(self, limit: Limit, clock=time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def retry_after_s(self, key: str) -> float | None:
        return self.take(key)

    def take(self, key: str) -> float | None:
        now = self._clock()
        tokens, updated = self._buckets.get(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - updated) * self.limit.rate_per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.limit.rate_per_s

    async def close(self) -> None:
        return None


_BUCKET_SCRIPT = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(bucket[1]), tonumber(bucket[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000000)
local wait_us = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_us = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait_us
"""


class RedisBuckets:
    """Buckets shared by every process using the same Redis and prefix."""

    def __init__(self, url: str, limit: Limit, prefix: str) -> None:
        import redis.asyncio as redis

        self.limit = limit
        self._prefix = f"{prefix}ratelimit:"
        self._redis = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._fallback = LocalBuckets(limit)
        self._failing = False

    async def retry_after_s(self, key: str) -> float | None:
        from redis.exceptions import RedisError

        try:
            wait_us = int(await self._script(
                keys=[self._prefix + key], args=[self.limit.rate_per_s, self.limit.burst]
            ))
        except (RedisError, OSError) as error:
            if not self._failing:
                logger.warning("rate limits fall back to this process: Redis %s",
                               type(error).__name__)
                self._failing = True
            return self._fallback.take(key)
        self._failing = False
        return wait_us / 1_000_000 if wait_us else None

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter(limit: Limit, redis_url: str | None, prefix: str) -> RateLimiter:
    if not limit.enabled:
        return Unlimited()
    if redis_url:
        return RedisBuckets(redis_url, limit, prefix)
    return LocalBuckets(limit)


def retry_after_header(wait_s: float) -> int:
    """Retry-After is whole seconds; never 0, which would invite a hot loop."""
    return max(1, math.ceil(wait_s))
