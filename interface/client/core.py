"""What the sync and async clients share, without I/O: the retry policy,
the read-your-writes position, the query parameters of a read, and how an
answer becomes data or an exception.

Retries: a connection error, a timeout or a 503 ``unavailable`` is tried
again, with the same request (so the same command id), a bounded number
of times with full-jitter exponential backoff (tenacity), never sooner than
the service's ``Retry-After`` (capped). The ledger applies a command at
most once by its id, so a retry never doubles a movement. Everything else
is the service's answer, raised at once as its typed exception.

Read-your-writes: the highest ``position`` of any answer is remembered and
sent as ``min_position`` on every later read, so a read reflects this
client's own writes even with ``consistency="eventual"``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from interface.client.calls import Call
from interface.client.errors import LedgerConnectionError, UnavailableError, error_from

Consistency = Literal["strong", "eventual"]
USER_AGENT = "deals-ledger-client/1"


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts_max`` attempts in all; the wait before retry n is
    uniform in [0, min(delay_s_max, delay_s_base * 2**n)], and at least the
    service's Retry-After (up to ``retry_after_s_max``)."""

    attempts_max: int = 5
    delay_s_base: float = 0.1
    delay_s_max: float = 2.0
    retry_after_s_max: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts_max < 1 or not 0 <= self.delay_s_base <= self.delay_s_max:
            raise ValueError("retry policy: attempts_max >= 1 and 0 <= base <= max")

    def options(self) -> dict[str, Any]:
        """tenacity's arguments, for Retrying and AsyncRetrying alike."""
        return {"stop": stop_after_attempt(self.attempts_max), "wait": self._wait,
                "retry": retry_if_exception(retryable), "reraise": True}

    def _wait(self, state: RetryCallState) -> float:
        jitter: float = wait_random_exponential(self.delay_s_base, self.delay_s_max)(state)
        error = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(error, "retry_after_s", None) or 0.0
        return max(jitter, min(asked, self.retry_after_s_max))


def retryable(error: BaseException) -> bool:
    """Nothing was applied (503 unavailable), or the answer never came
    (connection refused or cut, timeout): the same request is safe again."""
    return isinstance(error, httpx.TransportError | UnavailableError)


class Session:
    """One client's state: its highest seen position and read options."""

    def __init__(self, consistency: Consistency | None, retry: RetryPolicy) -> None:
        self.consistency = consistency
        self.retry = retry
        self._position = 0
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """The highest log position any answer to this client carried."""
        return self._position

    def params(self, call: Call[Any]) -> dict[str, Any]:
        params = dict(call.params or {})
        if call.query:
            if self._position:
                params["min_position"] = self._position
            if self.consistency is not None:
                params["consistency"] = self.consistency
        return params

    def answer(self, response: httpx.Response) -> Any:
        """The answer's JSON, remembering its position; a refusal raised."""
        if response.status_code >= 400:
            raise error_from(response.status_code, _json(response),
                             response.headers.get("Retry-After"))
        data = _json(response)
        self.see(data)
        return data

    def see(self, data: Any) -> None:
        position = data.get("position") if isinstance(data, dict) else None
        if isinstance(position, int) and not isinstance(position, bool):
            with self._lock:
                self._position = max(self._position, position)

    def lost(self, call: Call[Any], error: httpx.TransportError) -> LedgerConnectionError:
        again = f"; send it again with the same id ({call.command_id})" if call.command_id else ""
        return LedgerConnectionError(
            f"{call.method} {call.path}: no answer after {self.retry.attempts_max} attempts "
            f"({type(error).__name__}){again}", command_id=call.command_id)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
