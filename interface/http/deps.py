"""Dependency aliases for the routers, all in one place.

``Ledger`` and ``Queries`` inject the service and the read side;
``requires(scope)`` is how a route declares the one scope it needs (a test
walks the app's routes and fails any that declares none): it authenticates
the bearer token, takes a token from the key's rate-limit bucket and
checks the scope, in that order. ``WriteCommand`` and ``AdminCommand``
are a command route's scope guard, caller (the admitted key as the
ledger's rules see it, which every command is sent as), service and
``Idempotency-Key`` as one dependency (``Sending``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import anyio
from asgi_correlation_id import correlation_id
from fastapi import Depends, Header, Query, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import HTTPBearer

from application.authority import Authority
from domain.provenance import Provenance
from interface.http.auth import Keyring, Principal, Scope
from interface.http.errors import Forbidden, RateLimited, Unauthorized
from interface.http.idempotency import KEY_DESCRIPTION, KEY_HEADER, KEY_LENGTH_MAX, parse_key
from interface.http.query_params import check_query_parameters
from interface.http.ratelimit import RateLimiter, retry_after_header
from interface.http.schemas.types import POSITION_MAX
from interface.wiring.service import LedgerService
from projections.queries import Consistency, LedgerQueries, ReadPoint

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


class ScopeGuard(HTTPBearer):
    """A route's declared scope, as a dependency; also the bearer scheme
    OpenAPI shows (``HTTPBearer`` by name, as before). One dependency where
    there were two: FastAPI's per-dependency work on every request (cache
    keys, scope checks) was a sixth of the event loop under load
    (benchmarks/README.md, "The request path's profile")."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="an API key's token (DEALS_API_KEYS)")
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        check_query_parameters(request)  # first, as when it was a dependency of its own
        credentials = await super().__call__(request)
        keyring: Keyring = request.app.state.keyring
        if credentials is None:  # none, or another scheme than Bearer
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


def declared_scope(call: Any) -> Scope | None:
    """The scope a route's dependency declares: a guard's, or the guard of
    a command route's ``Sending`` dependency (``sending_with``)."""
    guard = call if isinstance(call, ScopeGuard) else getattr(call, "guard", None)
    return guard.scope if isinstance(guard, ScopeGuard) else None


def authority_of(principal: Principal) -> Authority:
    """An admitted key as the ledger's rules see it. Its commands' events
    record the key's name (never its token) and this request's X-Request-ID
    (``domain.provenance``)."""
    return Authority(f"key {principal.name!r}", admin=principal.allows(Scope.ADMIN),
                     provenance=Provenance(principal.name, correlation_id.get()))


KeyHeader = Annotated[str | None, Header(alias=KEY_HEADER, max_length=KEY_LENGTH_MAX,
                                         description=KEY_DESCRIPTION)]


def idempotency_key(request: Request, key: str | None) -> UUID | None:
    """The key from every ``Idempotency-Key`` line: repeated lines are one
    comma-joined value (RFC 9110 section 5.3), which is no UUID, so two
    keys are refused in either order instead of one being ignored."""
    if key is None:
        return None
    lines = request.headers.getlist(KEY_HEADER)
    return parse_key(", ".join(lines) if len(lines) > 1 else key)


async def get_idempotency_key(request: Request, key: KeyHeader = None) -> UUID | None:
    return idempotency_key(request, key)


IdempotencyKey = Annotated[UUID | None, Depends(get_idempotency_key)]
"""A command route's ``Idempotency-Key`` header (``interface.http.idempotency``)."""


@dataclass(frozen=True, slots=True)
class Sending:
    """What a command route sends with: the service, the admitted key as
    the ledger's rules see it, and the request's ``Idempotency-Key``."""

    ledger: LedgerService
    caller: Authority
    key: UUID | None


def sending_with(scope: Scope) -> Any:
    """A command route's one dependency (``WriteCommand``, ``AdminCommand``):
    the scope guard, then the ``Idempotency-Key`` header, in the order the
    separate dependencies had (401, 429, 403 before any validation error),
    resolved as one: FastAPI's work per dependency was most of its
    dependency solving (benchmarks/README.md, "The request path's
    profile"). It names its guard, which is how a route's scope is read
    (``declared_scope``)."""
    guard = ScopeGuard(scope)

    async def sending(request: Request, principal: Principal, key: str | None = None) -> Sending:
        return Sending(request.app.state.service, authority_of(principal),
                       idempotency_key(request, key))

    # Given as objects, not this module's postponed strings: FastAPI would
    # look ``guard`` up in the module's globals, where it is not.
    sending.__annotations__ = {"request": Request, "principal": Annotated[Principal, Depends(guard)],
                               "key": KeyHeader, "return": Sending}
    sending.guard = guard  # type: ignore[attr-defined]
    return sending


WriteCommand = Annotated[Sending, Depends(sending_with(Scope.WRITE))]
AdminCommand = Annotated[Sending, Depends(sending_with(Scope.ADMIN))]
WithdrawCommand = Annotated[Sending, Depends(sending_with(Scope.WITHDRAW))]

CAN_READ = requires(Scope.READ)
CAN_WRITE = requires(Scope.WRITE)
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
