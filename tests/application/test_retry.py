"""The one retry policy (tenacity underneath): bounded attempts, full-jitter
exponential waits within their ceiling, only the named errors retried."""

from __future__ import annotations

import asyncio

import pytest

from application.retry import RetryPolicy, retrying

POLICY = RetryPolicy(attempts_max=5, delay_s_base=0.1, delay_s_max=0.3)


class Flaky:
    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls}")
        return "answer"


def run(call: Flaky, **options) -> tuple[str, list[float], list[BaseException]]:
    slept: list[float] = []
    seen: list[BaseException] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> str:
        return await retrying(call, retry_on=(ConnectionError,), policy=POLICY, what="test",
                              sleep=sleep, on_retry=seen.append, **options)

    return asyncio.run(go()), slept, seen


def test_a_call_that_recovers_is_retried_with_bounded_jittered_waits():
    call = Flaky(failures=4)
    answer, slept, seen = run(call)
    assert answer == "answer" and call.calls == 5
    ceilings = [min(0.3, 0.1 * 2 ** n) for n in range(4)]  # 0.1, 0.2, 0.3, 0.3
    assert len(slept) == 4 and all(0 <= s <= c for s, c in zip(slept, ceilings, strict=True))
    assert [str(e) for e in seen] == ["attempt 1", "attempt 2", "attempt 3", "attempt 4"]


def test_the_last_error_is_raised_after_attempts_max():
    call = Flaky(failures=10)
    with pytest.raises(ConnectionError, match="attempt 5"):
        run(call)
    assert call.calls == POLICY.attempts_max


def test_other_errors_are_not_retried():
    call = Flaky(failures=1, error=ValueError)
    with pytest.raises(ValueError):
        run(call)
    assert call.calls == 1


def test_a_policy_out_of_bounds_is_refused():
    with pytest.raises(ValueError):
        RetryPolicy(attempts_max=0)
    with pytest.raises(ValueError):
        RetryPolicy(delay_s_base=1.0, delay_s_max=0.5)
