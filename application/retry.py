"""Bounded retries with exponential backoff and full jitter, for calls to
the chain and to the command writer that fail for a while (an RPC node
down, the store busy), through tenacity. Every retry loop has a limit; the
caller decides what happens after the last attempt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

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
    ``policy.attempts_max`` times in all; the last error is raised.

    The wait before retry n is uniform in [0, min(max, base * 2**(n-1))]
    (full jitter), so retrying clients spread out instead of hammering in step."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None and on_retry is not None:
            on_retry(error)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info("%s failed (%s); retry %d in %.2fs", what, error, state.attempt_number, delay)

    retryer = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts_max),
        wait=wait_random_exponential(multiplier=policy.delay_s_base, max=policy.delay_s_max),
        retry=retry_if_exception_type(retry_on),
        sleep=sleep, before_sleep=before_sleep, reraise=True,
    )
    async def attempt() -> T:  # ``call`` may be a plain function returning an awaitable
        return await call()

    return await retryer(attempt)
