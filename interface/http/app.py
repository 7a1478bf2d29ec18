"""The FastAPI application: routers, auth, limits and the one error handler.

``create_app`` builds it for a settings object (the tests pass their own);
``app_from_env`` is the factory uvicorn imports in every worker process of
``deals-ledger serve``. The app owns its LedgerService: the lifespan starts
it (writer thread, genesis) and, on shutdown, after uvicorn has stopped
accepting and let in-flight requests finish, stops it, which answers every
command still queued before the store is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from interface.http.activity import KeyActivityMiddleware
from interface.http.auth import Keyring, keyring_for
from interface.http.bodylimit import BodyLimitMiddleware
from interface.http.docs_pages import install_docs_pages
from interface.http.errors import install_error_handlers
from interface.http.forwarded import ForwardedHeadersMiddleware
from interface.http.http_metrics import HttpMetricsMiddleware
from interface.http.query_params import refuse_unknown_query_parameters
from interface.http.ratelimit import Limit, rate_limiter
from interface.http.route_index import index_routes
from interface.http.routers import (
    accounts,
    allowances,
    audit,
    events,
    fees,
    holds,
    operations,
    pricing,
    proofs,
    reconciliations,
    rewards,
    supply,
    system,
    transfers,
    wallets,
    webhooks,
    withdrawals,
)
from interface.http.schemas.responses import ErrorResponse
from interface.wiring.logs import valid_request_id
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings

ROUTERS = (
    accounts.router, wallets.router, transfers.router, fees.router, holds.router,
    allowances.router, rewards.router, supply.router, pricing.router, system.router,
    audit.router, operations.router, reconciliations.router, proofs.router, events.router,
    webhooks.router, withdrawals.router,
)
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics"})
"""The only routes without a scope (besides /docs and /openapi.json)."""

DESCRIPTION = """
The DEAL token ledger (shared/API.md). Amounts are JSON strings of DEAL with
at most 8 decimals and are answered in their shortest exact form ("0.1").

* **Auth**: `Authorization: Bearer <token>`; scopes `ledger:read`,
  `ledger:write`, `ledger:withdraw` (`POST /v1/withdrawals`: tokens out of
  custody, which no one can reverse; `ledger:write` alone may not), `admin`
  (implies the others).
* **Idempotency**: every command is keyed by its id. The first execution
  answers 201 (200 for commands that answer 200 anyway); a repeat with the
  same body answers 200 with the first outcome and changes nothing; a repeat
  with another body is 409 `idempotency_conflict`.
* **Errors**: `{"error": {"code", "message", "request_id"}}`; `request_id` is
  the request's `X-Request-ID` (the client's, or one the service made, also
  answered in that header): quote it when reporting a problem. 400 `bad_request` for
  malformed JSON, a key repeated in an object and values of the wrong JSON
  type, 413 `bad_request` for a body over the limit, 415
  `unsupported_media_type` for a body not sent as `application/json`, 422
  for validation (unknown fields included), 429 `rate_limited` with
  Retry-After, 503 `unavailable` (nothing applied; retry
  with the same id). At the connection: 408 `request_timeout` for a request
  head or body that did not arrive in time, 431 `bad_request` for a head
  over the limit.
* **Consistency**: by default every query reflects every command
  acknowledged before it arrived, by any API process (it reads the log's
  head, then answers from read models at least that far; waits up to 5 s,
  else 503 `unavailable` with Retry-After). `consistency=eventual` opts out
  per request: faster, possibly behind. `min_position` (a command answer's
  `position`) combines with either; a position past the log's head is 422
  `position_past_head`, naming the head. Every query answer carries the
  `position` whose state it reflects (`as_of_position` for a single
  transfer, whose `position` is the movement's own).
* **Positions name whole commits**: one command commits several events (a
  transfer: recorded, debit, credit). A position given to a query (`at`,
  `min_position`, `until_position`, `after_position`) means the state after
  the last commit that ends at or before it; the answer says which.
"""

_COMMON_REFUSAL_TEXT = {
    400: "bad_request: malformed JSON or a value of the wrong type",
    401: "unauthorized: no or unknown token",
    403: "forbidden: the key lacks the route's scope (or the admin scope a debit of a "
         "system account needs)",
    413: "bad_request: the body is larger than the configured limit",
    415: "unsupported_media_type: a body sent without Content-Type: application/json",
    422: "validation: invalid_request, invalid_amount, invalid_wallet_address, "
         "unknown_service_type, same_account, supply_limit_exceeded; position_past_head "
         "(a query named a log position the log has not reached)",
    429: "rate_limited: retry after the Retry-After header's seconds",
    503: "unavailable: the store is unavailable (nothing was applied), or the read models "
         "did not reach the position a query must reflect within 5 s; retry after "
         "Retry-After",
}
COMMON_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in _COMMON_REFUSAL_TEXT.items()
}
"""Refusals every scoped route can answer, documented on each."""


def create_app(
    settings: Settings, *, keyring: Keyring | None = None, service: LedgerService | None = None
) -> FastAPI:
    """``service``, when given, is started and stopped by the caller."""
    app = FastAPI(
        title="Deals Ledger", version="1", description=DESCRIPTION,
        lifespan=_lifespan(settings, service), docs_url=None, redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    install_docs_pages(app)
    app.state.settings = settings
    app.state.keyring = keyring if keyring is not None else keyring_for(settings)
    app.state.service = service
    app.add_middleware(KeyActivityMiddleware)
    app.add_middleware(BodyLimitMiddleware, body_bytes_max=settings.body_bytes_max)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(CorrelationIdMiddleware, validator=valid_request_id)
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.trusted_proxies)  # outermost
    install_error_handlers(app)
    for router in ROUTERS:
        public = router is operations.router
        # A scoped route's guard checks the query parameters first itself.
        app.include_router(router, responses={} if public else COMMON_REFUSALS,
                           dependencies=[Depends(refuse_unknown_query_parameters)] if public
                           else [])
    index_routes(app)
    return app


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId is its function's name (``charge_fee``,
    ``get_balance``), so a client generated in any language reads as the
    ledger speaks, not as FastAPI's ``charge_fee_v1_fees_post``. Names are
    unique across routers (a test checks)."""
    return route.name


def app_from_env() -> FastAPI:
    """The uvicorn factory: settings and keys from the environment."""
    return create_app(Settings.from_env())


def _lifespan(settings: Settings, given: LedgerService | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.rate_limiter = rate_limiter(
            Limit(settings.rate_limit_per_s, settings.rate_limit_burst),
            settings.redis_url, settings.redis_prefix,
        )
        if given is None:
            service = await anyio.to_thread.run_sync(_started_service, settings)
        else:
            service = given
        app.state.service = service
        try:
            yield
        finally:
            if given is None:
                await anyio.to_thread.run_sync(service.stop)
            await app.state.rate_limiter.close()

    return lifespan


def _started_service(settings: Settings) -> LedgerService:
    service = LedgerService(settings)
    try:
        return service.start()
    except BaseException:
        service.stop()
        raise


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every path operation of the app, walking into included routers (FastAPI
    keeps them nested); the routers are included without extra prefixes or
    dependencies, so each route's path and dependencies are its own."""
    found: list[APIRoute] = []
    to_visit: list[Any] = list(app.routes)
    while to_visit:
        route = to_visit.pop(0)
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            to_visit.extend(route.original_router.routes)
    return found
