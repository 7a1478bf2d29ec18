"""HTTP request count and latency per route template, method and status,
for ``GET /metrics``: a small pure-ASGI middleware (no body buffering, one
counter and one histogram update per request).

Labels come from small fixed sets: the route's template (``/v1/accounts/
{account_id}/balance``, never the id), the method (unknown ones are
"OTHER") and the status; a path no route matched is "<unmatched>", so a
scanner walking random URLs cannot grow the label set.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "deals_ledger_http_requests", "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "deals_ledger_http_request_duration_seconds",
    "Time from a request reaching the app to its last answer byte, by route template and method",
    ["route", "method"], buckets=_BUCKETS_S,
)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            counter, histogram = _children(route_of(scope), _method(scope), status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)


@lru_cache(maxsize=4096)
def _children(route: str, method: str, status: int) -> tuple[Any, Any]:
    """The labelled series, looked up once per label set (``labels()`` takes a
    lock and builds a key on every call); the label sets are few (see above)."""
    return (HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route, method))


def route_of(scope: Scope) -> str:
    """The template of the route that answered (the router writes it or its
    endpoint into the scope), else the mount's path (the docs' assets), else
    "<unmatched>"."""
    path = getattr(scope.get("route"), "path", None)  # FastAPI's routes
    if isinstance(path, str):
        return path
    endpoint = scope.get("endpoint")  # Starlette's plain routes (the docs' pages)
    if endpoint is not None:
        for route in getattr(scope.get("app"), "routes", ()):
            if getattr(route, "endpoint", None) is endpoint:
                return str(route.path)
    return str(scope.get("root_path") or "") or UNMATCHED


def _method(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "OTHER"
