"""Every refusal becomes one JSON shape, ``{"error": {"code", "message"}}``,
with its status code from ONE table.

The ledger's errors carry a stable ``code`` (domain.errors,
application.errors); the few refusals that only exist at the HTTP edge
(auth, rate limit, malformed requests, unknown routes) are typed here under
the same root. FastAPI's own validation errors and Starlette's HTTP errors
are translated to those codes, so clients never see another shape, and a
bug answers 500 ``internal_error`` without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.alerts import STORE_ALERT_KEY, AlertKind, raise_alert
from application.errors import InternalError, LedgerUnavailable
from application.write.contention import is_lock_timeout
from domain.errors import LedgerError

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "insufficient_balance": 402,
    "allowance_exceeded": 402,
    "forbidden": 403,
    "not_found": 404,
    "account_not_found": 404,
    "transfer_not_found": 404,
    "hold_not_found": 404,
    "wallet_not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "unsupported_media_type": 415,
    "idempotency_conflict": 409,
    "account_exists": 409,
    "wallet_already_connected": 409,
    "hold_not_pending": 409,
    "wallet_cooling_down": 409,
    "transfer_not_reversible": 409,
    "transfer_not_settled": 409,
    "settlement_conflict": 409,
    "finding_not_adjustable": 409,
    "finding_not_found": 404,
    "event_not_found": 404,
    "price_rule_not_found": 404,
    "not_anchored": 409,
    "reconciliation_not_found": 404,
    "invalid_request": 422,
    "invalid_amount": 422,
    "invalid_wallet_address": 422,
    "unknown_service_type": 422,
    "same_account": 422,
    "supply_limit_exceeded": 422,
    "position_past_head": 422,
    "account_frozen": 423,
    "rate_limited": 429,
    "internal_error": 500,
    "unavailable": 503,
    "store_damaged": 503,
}
"""The contract's table (shared/API.md) plus the ledger's two extra rules,
``transfer_not_reversible`` (409: the transfer's state forbids it),
``transfer_not_settled`` (409: retry the reversal once the movement settles) and
``supply_limit_exceeded`` (422), ``position_past_head`` (422: a query named a
log position the log has not reached; the message names the head),
``not_found`` / ``method_not_allowed`` for unknown routes and methods,
``unsupported_media_type`` for a body not sent as application/json, and
``request_timeout`` for a request head or body that did not arrive in time
(interface.http.edge)."""

UNAVAILABLE_RETRY_AFTER_S = 1
VALIDATION_DETAILS_MAX = 5
_DOMAIN_CODES = frozenset(
    {"invalid_amount", "invalid_wallet_address", "unknown_service_type", "same_account"}
)


class HttpRefusal(LedgerError):
    """A refusal that exists only at the HTTP edge."""

    headers: dict[str, str] | None = None


class BadRequest(HttpRefusal):
    """Malformed JSON, a value of the wrong JSON type, or a body too large."""

    code = "bad_request"

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(HttpRefusal):
    """No bearer token, or one no configured key has."""

    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(HttpRefusal):
    """The key is valid but lacks the route's scope."""

    code = "forbidden"


class RateLimited(HttpRefusal):
    """The key has used up its token bucket; retry after ``retry_after_s``."""

    code = "rate_limited"

    def __init__(self, retry_after_s: int, reason: str = "rate limit exceeded") -> None:
        super().__init__(f"{reason}; retry in {retry_after_s} s")
        self.headers = {"Retry-After": str(retry_after_s)}


class NotFound(HttpRefusal):
    code = "not_found"


class MethodNotAllowed(HttpRefusal):
    code = "method_not_allowed"


class RequestTimeout(HttpRefusal):
    """A client did not send a request's head, or its body, in time."""

    code = "request_timeout"


class UnsupportedMediaType(HttpRefusal):
    """A request body sent without ``Content-Type: application/json``."""

    code = "unsupported_media_type"


class InvalidRequestError(HttpRefusal):
    """A request failed validation with one of the contract's 422 codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(error: LedgerError) -> JSONResponse:
    """The one rendering of a refusal."""
    status = status_of(error)
    index = getattr(error, "index", None)  # an atomic batch names its refused item
    extra: dict[str, Any] = {"item_index": index} if isinstance(index, int) else {}
    request_id = correlation_id.get()
    if request_id is not None:  # the X-Request-ID of this request, to quote in a report
        extra["request_id"] = request_id
    return JSONResponse(error_body(error.code, error.message, **extra), status,
                        headers_of(error, status))


def status_of(error: LedgerError) -> int:
    """The refusal's status: its own (413, 431 ``bad_request``) or the table's."""
    return getattr(error, "status", None) or STATUS_BY_CODE.get(error.code, 500)


def headers_of(error: LedgerError, status: int) -> dict[str, str]:
    headers = dict(getattr(error, "headers", None) or {})
    if status == 503:
        headers.setdefault("Retry-After", str(UNAVAILABLE_RETRY_AFTER_S))
    return headers


def as_ledger_error(exc: Exception) -> LedgerError:
    """Translate anything a request can raise into a typed refusal."""
    if isinstance(exc, LedgerError):
        return exc
    if isinstance(exc, RequestValidationError):
        return from_validation_errors(exc.errors())
    if isinstance(exc, StarletteHTTPException):
        return _from_http_exception(exc)
    if _is_data_error(exc):
        # The store refused a value (PostgreSQL text cannot hold NUL): the
        # request's fault, never an outage, and nothing was applied.
        logger.warning("the store refused a value of a request: %s", type(exc).__name__)
        return InvalidRequestError(
            "invalid_request", "the request holds a value the store cannot take")
    if is_lock_timeout(exc):
        logger.info("store contended: a lock wait timed out")
        return LedgerUnavailable("the store is contended; nothing was applied, retry")
    if _is_store_failure(exc):
        logger.warning("store unavailable: %s", type(exc).__name__)
        raise_alert(AlertKind.STORE_UNREACHABLE, "a request failed on the store",
                    dedup_key=STORE_ALERT_KEY, seen_by="http", error=type(exc).__name__)
        return LedgerUnavailable("the store is unavailable; nothing was applied, retry")
    logger.error("unhandled %s while serving a request", type(exc).__name__, exc_info=exc)
    return _internal()


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """THE exception handler: registered for every exception type the app sees."""
    return error_response(as_ledger_error(exc))


def install_error_handlers(app: FastAPI) -> None:
    for exc_type in (LedgerError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_type, handle_error)


def from_validation_errors(errors: Sequence[Any]) -> LedgerError:
    """Wrong JSON types and malformed JSON are 400 bad_request; the contract's
    validation codes (an amount that is not a decimal string, an unknown
    service type...) keep their code; everything else is invalid_request."""
    details = "; ".join(_describe(error) for error in errors[:VALIDATION_DETAILS_MAX])
    types = [str(error.get("type", "")) for error in errors]
    if any(_is_wrong_type(error) for error in errors):
        return BadRequest(details)
    for error_type in types:
        if error_type in _DOMAIN_CODES:
            return InvalidRequestError(error_type, details)
    return InvalidRequestError("invalid_request", details)


def _is_wrong_type(error: Any) -> bool:
    error_type = str(error.get("type", ""))
    if error_type == "json_invalid":
        return True
    if error_type == "missing" and tuple(error.get("loc", ())) == ("body",):
        return True
    location = tuple(error.get("loc", ()))
    return (error_type.endswith("_type") and error_type not in _DOMAIN_CODES
            and bool(location) and location[0] == "body")


def _describe(error: Any) -> str:
    if error.get("type") == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
    location = ".".join(str(part) for part in _field_location(error.get("loc", ())))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})


def _field_location(location: Sequence[Any]) -> Sequence[Any]:
    """The field's own path (``until``, ``transfers.3.amount``): which part of
    the request holds it is clear from the name and would only differ by
    route (``at`` is a query parameter, ``until`` a body field)."""
    if location and location[0] in _REQUEST_PARTS:
        return location[1:]
    return location


def _from_http_exception(exc: StarletteHTTPException) -> LedgerError:
    if exc.status_code == 404:
        return NotFound("no such route")
    if exc.status_code == 405:
        refusal = MethodNotAllowed("method not allowed on this route")
        refusal.headers = dict(exc.headers or {})
        return refusal
    if exc.status_code == 413:
        return BadRequest("request body too large", status=413)
    if exc.status_code == 422:
        return InvalidRequestError("invalid_request", str(exc.detail))
    if exc.status_code < 500:
        return BadRequest(str(exc.detail), status=exc.status_code)
    return LedgerUnavailable(str(exc.detail)) if exc.status_code == 503 else _internal()


def _internal() -> LedgerError:
    return InternalError("internal error; the request was not applied")


def _is_data_error(exc: Exception) -> bool:
    from eventsourcing.persistence import DataError

    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return isinstance(exc, DataError)
    return isinstance(exc, DataError | psycopg.DataError)


def _is_store_failure(exc: Exception) -> bool:
    import sqlite3

    from eventsourcing.persistence import PersistenceError

    if isinstance(exc, PersistenceError | sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError)
