"""The route index (interface.http.route_index) picks exactly the route
FastAPI's own matching over every route picks: the same endpoint, the same
405 for a known path with another method, the same miss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Match

from interface.http.app import api_routes, create_app
from interface.http.route_index import RouteIndex
from interface.wiring.settings import Settings

METHODS = ("GET", "POST", "PUT", "DELETE")
EXTRA_PATHS = (
    "/", "/nothing", "/v1", "/v1/", "/v1/transfers/", "/v1/transferx", "/v1/accounts/a/",
    "/v1/accounts/a/wallets/b/c", "/docs", "/docs/", "/docs/assets/swagger-ui.css",
    "/openapi.json", "/health/", "/v1/fees/x",
)


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(data_dir=Path("unused"), api_keys="k:token:admin"))


def _first_match(routes, scope):
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return Match.FULL, route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


def _paths(app):
    concrete = [re.sub(r"\{[^}]+\}", "x1", route.path) for route in api_routes(app)]
    return [*concrete, *EXTRA_PATHS]


def test_the_app_matches_through_the_index(app):
    assert isinstance(app.router.middleware_stack, RouteIndex)


def test_every_path_and_method_matches_the_route_it_matches_without_the_index(app):
    index: RouteIndex = app.router.middleware_stack
    index._build()
    for path in _paths(app):
        for method in METHODS:
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            reachable = [route for route, prefix in zip(app.router.routes, index._prefixes,
                                                        strict=True) if path.startswith(prefix)]
            assert _first_match(reachable, scope) == _first_match(app.router.routes, scope), (
                method, path)


def test_a_route_added_after_the_app_was_made_is_reached(app):
    async def late():
        return {"late": True}

    client = TestClient(app)  # no lifespan: these routes need no ledger
    assert client.get("/openapi.json").status_code == 200  # the index is built
    app.add_api_route("/later-route", late)
    assert client.get("/later-route").json() == {"late": True}
