"""Dependency aliases for the routers, all in one place.

``Ledger`` and ``Queries`` inject the service and the read side;
``requires(scope)`` is how a route declares the one scope it needs (a test
walks the app's routes and fails any that declares none): it authenticates
the bearer token, takes a token from the key's rate-limit bucket and
checks the scope, in that order. ``Caller`` is the admitted key as the
ledger's rules see it, which every command is sent as.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio
from asgi_correlation_id import correlation_id
from fastapi import Depends, Header, Query, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.authority import Authority
from domain.provenance import Provenance
from interface.http.auth import Keyring, Principal, Scope
from interface.http.errors import Forbidden, RateLimited, Unauthorized
from interface.http.idempotency import KEY_DESCRIPTION, KEY_HEADER, KEY_LENGTH_MAX, parse_key
from interface.http.ratelimit import RateLimiter, retry_after_header
from interface.http.schemas.types import POSITION_MAX
from interface.wiring.service import LedgerService
from projections.queries import Consistency, LedgerQueries, ReadPoint

_bearer = HTTPBearer(auto_error=False, description="an API key's token (DEALS_API_KEYS)")


# Both are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency
# in its thread pool, and that hop (a queue put and a thread wake-up per
# request) was a fifth of the event loop's busy time under load (py-spy,
# deals-ledger bench scenario 1). They only read app state: no I/O to offload.


async def get_service(request: Request) -> LedgerService:
    return request.app.state.service


async def get_queries(request: Request) -> LedgerQueries:
    """The read side, or 503 at once while the store is known to be down
    (rather than a request that waits on the pool for many seconds)."""
    service: LedgerService = request.app.state.service
    service.refuse_if_store_down()
    return service.queries


Ledger = Annotated[LedgerService, Depends(get_service)]
Queries = Annotated[LedgerQueries, Depends(get_queries)]


class ScopeGuard:
    """A route's declared scope, as a dependency."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        keyring: Keyring = request.app.state.keyring
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        principal = keyring.authenticate(credentials.credentials)
        if principal is None:
            raise Unauthorized("unknown token")
        limiter: RateLimiter = request.app.state.rate_limiter
        wait_s = await limiter.retry_after_s(principal.name)
        if wait_s is not None:
            raise RateLimited(retry_after_header(wait_s))
        if not principal.allows(self.scope):
            raise Forbidden(f"key {principal.name!r} lacks the {self.scope.value!r} scope")
        request.state.principal = principal
        return principal


def requires(scope: Scope) -> DependsParam:
    return Depends(ScopeGuard(scope))


async def get_caller(request: Request) -> Authority:
    """The key the route's scope guard admitted (route dependencies run
    before the endpoint's). A route without a guard has no caller, and
    sends nothing. Its commands' events record the key's name (never its
    token) and this request's X-Request-ID (``domain.provenance``)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized("this route admits no key to send commands")
    return Authority(f"key {principal.name!r}", admin=principal.allows(Scope.ADMIN),
                     provenance=Provenance(principal.name, correlation_id.get()))


Caller = Annotated[Authority, Depends(get_caller)]

async def get_idempotency_key(
    request: Request,
    key: Annotated[str | None, Header(alias=KEY_HEADER, max_length=KEY_LENGTH_MAX,
                                      description=KEY_DESCRIPTION)] = None,
) -> UUID | None:
    """The key from every ``Idempotency-Key`` line: repeated lines are one
    comma-joined value (RFC 9110 section 5.3), which is no UUID, so two
    keys are refused in either order instead of one being ignored."""
    lines = request.headers.getlist(KEY_HEADER)
    return parse_key(", ".join(lines) if len(lines) > 1 else key)


IdempotencyKey = Annotated[UUID | None, Depends(get_idempotency_key)]
"""A command route's ``Idempotency-Key`` header (``interface.http.idempotency``)."""

CAN_READ = requires(Scope.READ)
CAN_WRITE = requires(Scope.WRITE)
CAN_WITHDRAW = requires(Scope.WITHDRAW)
IS_ADMIN = requires(Scope.ADMIN)


async def in_thread(function: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking read (store, read models) off the event loop."""
    return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))


class ReadOptions:
    """How fresh a query's answer must be: the query parameters every read
    route takes (README, "Consistency")."""

    def __init__(
        self,
        consistency: Annotated[Consistency, Query(
            description="strong (default): reflect every command acknowledged before this "
                        "request arrived, by any API process; eventual: answer from the read "
                        "models as they are, faster and possibly behind",
        )] = Consistency.STRONG,
        min_position: Annotated[int | None, Query(
            ge=0, le=POSITION_MAX,
            description="also include this log position (a command answer's `position`); "
                        "waits up to 5 s (then 503 unavailable with Retry-After); past the "
                        "log's head: 422 position_past_head",
        )] = None,
    ) -> None:
        self.consistency = consistency
        self.min_position = min_position


Read = Annotated[ReadOptions, Depends()]


async def planned(
    queries: LedgerQueries, read: ReadOptions, *, at_position: int | None = None,
    at_name: str = "at", timeout_s: float | None = None,
) -> ReadPoint:
    """Work out what the query must reflect (one short read of the log's
    head, in a thread), then await the read models without holding one."""
    point = await in_thread(queries.plan, read.consistency, read.min_position, at_position,
                            at_name)
    await queries.reach(point, timeout_s)
    return point
