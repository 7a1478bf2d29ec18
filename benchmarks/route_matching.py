"""What matching a request to its route costs, over every route and over
the routes the index lets through (interface.http.route_index).

    .venv/bin/python -m benchmarks.route_matching

In process, no server: for each API route a concrete path of it, matched
as FastAPI's router does (first full match, in order) over all the app's
routes, then over the reachable ones (the index's own prefix test
included). Prints microseconds per match (the fastest of 5 rounds): the route of scenario 1, the
mean over every route, and the worst route.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

from starlette.routing import Match

from interface.http.app import api_routes, create_app
from interface.http.route_index import RouteIndex
from interface.wiring.settings import Settings

ROUNDS = 500
REPEATS = 5


def _first_full(routes: list[Any], scope: dict[str, Any]) -> Any:
    for route in routes:
        if route.matches(dict(scope))[0] == Match.FULL:
            return route
    return None


def _per_match_us(match: Any, scope: dict[str, Any]) -> float:
    """The fastest of a few timed rounds: the machine is shared, and the
    other work only ever adds time."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            match(scope)
        best = min(best, time.perf_counter() - started)
    return best / ROUNDS * 1e6


def main() -> None:
    app = create_app(Settings(data_dir=Path("unused"), api_keys="bench:token:admin"))
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    index._build()
    routes = app.router.routes
    prefixes = index._prefixes

    def indexed(scope: dict[str, Any]) -> Any:
        path = scope["path"]
        return _first_full([r for r, p in zip(routes, prefixes, strict=True)
                            if path.startswith(p)], scope)

    rows = []
    for route in api_routes(app):
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        scope = {"type": "http", "method": sorted(route.methods)[0], "path": path,
                 "root_path": ""}
        rows.append((f"{scope['method']} {route.path}",
                     _per_match_us(lambda s: _first_full(routes, s), scope),
                     _per_match_us(indexed, scope)))
    print(f"{'route':55s} {'all routes us':>14s} {'indexed us':>11s}")
    for name, every, only in rows:
        if name == "POST /v1/transfers":
            print(f"{name:55s} {every:14.1f} {only:11.1f}")
    print(f"{'mean over ' + str(len(rows)) + ' routes':55s} "
          f"{statistics.mean(r[1] for r in rows):14.1f} {statistics.mean(r[2] for r in rows):11.1f}")
    worst = max(rows, key=lambda r: r[1])
    print(f"{'worst: ' + worst[0]:55s} {worst[1]:14.1f} {worst[2]:11.1f}")


if __name__ == "__main__":
    main()
