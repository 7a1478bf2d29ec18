"""What the HTTP metrics middleware (interface/http/http_metrics.py) costs
per request: the same trivial ASGI app called directly and through the
middleware, in alternating rounds (so the shared machine's drift falls on
both), in process, without sockets: the difference is the middleware's own
work (a route lookup, one counter and one histogram update).

    python -m benchmarks.http_metrics_cost [--rounds 6] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

from interface.http.http_metrics import HttpMetricsMiddleware

ROUTE = SimpleNamespace(path="/v1/accounts/{account_id}/balance")


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = ROUTE  # as FastAPI's router leaves it
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _noop_send(message: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _per_request_s(app: Any, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/v1/accounts/x/balance"}
        await app(scope, _receive, _noop_send)
    return (time.perf_counter() - started) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_metrics_cost")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    measured = HttpMetricsMiddleware(_bare_app)
    bare, metered = [], []
    for _ in range(args.rounds):
        bare.append(asyncio.run(_per_request_s(_bare_app, args.requests)))
        metered.append(asyncio.run(_per_request_s(measured, args.requests)))
    cost_us = (statistics.median(metered) - statistics.median(bare)) * 1e6
    print(f"bare app      {statistics.median(bare) * 1e6:8.2f} us/request (median of {args.rounds})")
    print(f"with metrics  {statistics.median(metered) * 1e6:8.2f} us/request")
    print(f"middleware    {cost_us:8.2f} us/request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
