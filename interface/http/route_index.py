"""Route matching that tries only the routes a request's path could reach.

FastAPI matches a request by asking every route of the app, in order, and
an included router answers by asking each of its own routes, with a few
dictionary writes and a regular expression per route. With the ledger's
49 routes that was 250 us for ``POST /v1/transfers`` (the 12th route) and
a fifth of the event loop's busy time under load (py-spy, ``deals-ledger
bench`` scenario 1), more than the bare endpoint's whole request.

``index_routes(app)`` puts an index in front of the app's router: every
top-level route (an included router, a mount, a plain route) has a static
path prefix that any path it matches must start with (the text before its
first ``{`` parameter; for an included router, what all its routes'
prefixes share). A request is matched by FastAPI's own code against only
the routes whose prefix its path starts with, in their original order:
the same route wins, the same 405 and the same slash redirect are
answered, because a route left out could not have matched. Anything the
index cannot bound (a route without a path) keeps the empty prefix and is
always tried.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette._utils import get_route_path
from starlette.types import Receive, Scope, Send


def index_routes(app: FastAPI) -> None:
    """Match ``app``'s requests through a ``RouteIndex``. Left as it is when
    the router has middleware of its own (then its stack is not just its
    matching)."""
    router = app.router
    if getattr(router.middleware_stack, "__func__", None) is not APIRouter.app:
        return
    router.middleware_stack = RouteIndex(router)


class RouteIndex:
    """Pure ASGI: the router's matching over the routes a path can reach.

    Built from the router's routes and rebuilt when their number changes (a
    route added after the app was made)."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._built_for = -1
        self._prefixes: list[str] = []
        self._views: dict[tuple[int, ...], APIRouter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router.app(scope, receive, send)
            return
        if len(self.router.routes) != self._built_for:
            self._build()
        path = get_route_path(scope)
        reachable = tuple(i for i, prefix in enumerate(self._prefixes) if path.startswith(prefix))
        view = self._views.get(reachable)
        if view is None:
            view = self._views[reachable] = self._view(reachable)
        scope.setdefault("router", self.router)  # url_for names every route
        await view.app(scope, receive, send)

    def _build(self) -> None:
        routes = self.router.routes
        self._prefixes = [static_prefix(route).rstrip("/") for route in routes]
        self._views = {}
        self._built_for = len(routes)

    def _view(self, reachable: tuple[int, ...]) -> APIRouter:
        """The router itself, seeing only the reachable routes (a shallow
        copy: everything else, redirect_slashes and the default included,
        is the router's own). At most one per distinct set of prefixes a
        path starts with, so the views are bounded by the routes."""
        view = copy.copy(self.router)
        view.routes = [self.router.routes[i] for i in reachable]
        return view


def static_prefix(route: Any) -> str:
    """Text every path ``route`` matches starts with ("" when unknown)."""
    contexts = getattr(route, "effective_route_contexts", None)
    if contexts is None:
        path = getattr(route, "path", None)
        return path.split("{", 1)[0] if isinstance(path, str) else ""
    if route.effective_low_priority_routes():
        return ""  # a fallback route may answer any path under the router
    prefixes = [static_prefix(context) for context in contexts()]
    return os.path.commonprefix(prefixes) if prefixes else ""
