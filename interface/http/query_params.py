"""Unknown query parameters are refused on every route (400 bad_request),
not silently ignored: ``?order=desc`` on a route that took no ``order``
used to answer oldest first as if asked, and a misspelt filter
(``?knd=user``) answered everything. Every route's first dependency (a
scoped route's guard, a public route's own one) compares the request's
parameter names with the ones its route declares (read once per route
from FastAPI's own dependency tree), so a route's parameters are declared
once, where the route takes them.

The same check refuses (422 invalid_request, naming the parameter) a
parameter given twice (``?order=desc&order=asc`` silently took the last;
no route declares a repeatable one) and a value holding a control
character (NUL above all: PostgreSQL text cannot hold one, so the read
failed as if the store were down), a bidirectional control or a lone
surrogate: the one rule for free text, ``application.commands.check_reason``.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from application.commands import check_reason
from domain.errors import InvalidRequest
from interface.http.errors import BadRequest

_NAMES_SHOWN_MAX = 5
_KEPT_AS = "_deals_declared_query_parameters"
_NAME_SHOWN_LENGTH_MAX = 40


async def refuse_unknown_query_parameters(request: Request) -> None:
    """A public route's dependency (``check_query_parameters``)."""
    check_query_parameters(request)


def check_query_parameters(request: Request) -> None:
    """400 naming the first unknown parameters and what the route takes.
    A scoped route's guard runs this first (``deps.ScopeGuard``): where a
    dependency of its own ran it, just before the guard, it was one more
    dependency for FastAPI to solve on every request."""
    route = request.scope.get("route")
    # The raw query string, not request.url.query: every request runs this,
    # and request.url builds a URL object (2% of the event loop under load).
    if not isinstance(route, APIRoute) or not request.scope.get("query_string"):
        return
    declared = declared_query_parameters(route)
    unknown = sorted({name for name in request.query_params if name not in declared})
    if unknown:
        shown = ", ".join(repr(name[:_NAME_SHOWN_LENGTH_MAX]) for name in unknown[:_NAMES_SHOWN_MAX])
        takes = ", ".join(sorted(declared)) or "none"
        raise BadRequest(f"unknown query parameter {shown}; this route takes: {takes}")
    _refuse_repeats_and_control_text(request.query_params.multi_items())


def _refuse_repeats_and_control_text(items: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise InvalidRequest(f"{name}: a query parameter given more than once")
        seen.add(name)
        # Named as a validation error names a field ("since: ...").
        check_reason(value, name=f"{name}:")


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameter names (aliases) a route and its dependencies
    declare, worked out on the route's first request and kept on it."""
    known = getattr(route, _KEPT_AS, None)
    if known is None:
        known = _walk(route)
        setattr(route, _KEPT_AS, known)
    return known


def _walk(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    todo: list[Dependant] = [route.dependant]
    while todo:
        dependant = todo.pop()
        names.update(param.alias for param in dependant.query_params)
        todo.extend(dependant.dependencies)
    return frozenset(names)
