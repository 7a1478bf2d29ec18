"""Bounded retries with exponential backoff and full jitter, for calls to
the chain and to the command writer that fail for a while (an RPC node
down, the store busy). Every retry loop has a limit; the caller decides what
happens after the last attempt."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts_max: int = 8
    delay_s_base: float = 0.05
    delay_s_max: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts_max < 1 or self.delay_s_base < 0 or self.delay_s_max < self.delay_s_base:
            raise ValueError("retry policy: attempts_max >= 1 and 0 <= base <= max")

    def delay_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)], so
        retrying clients spread out instead of hammering in step."""
        ceiling = min(self.delay_s_max, self.delay_s_base * (2 ** min(attempt, 30)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    policy: RetryPolicy,
    what: str,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``call()``; on ``retry_on`` errors, wait and try again, at most
    ``policy.attempts_max`` times in all; the last error is raised."""
    for attempt in range(policy.attempts_max):
        try:
            return await call()
        except retry_on as error:
            if attempt + 1 >= policy.attempts_max:
                raise
            if on_retry is not None:
                on_retry(error)
            delay = policy.delay_s(attempt)
            logger.info("%s failed (%s); retry %d in %.2fs", what, error, attempt + 1, delay)
            await sleep(delay)
    raise AssertionError("unreachable")
