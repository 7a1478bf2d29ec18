"""One router per resource; each route parses, calls one application or
query function, and renders. Scopes are declared on each route with
``dependencies=[CAN_READ | CAN_WRITE | IS_ADMIN]``."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Response

from application.outcomes import Outcome
from interface.http.schemas.responses import ErrorResponse

OutcomeT = TypeVar("OutcomeT", bound=Outcome)

_DESCRIPTIONS = {
    402: "insufficient_balance or allowance_exceeded",
    404: "the named account, transfer, hold or wallet does not exist",
    409: "idempotency_conflict, account_exists, wallet_already_connected, hold_not_pending "
         "or transfer_not_reversible",
    423: "account_frozen",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route can answer besides the common
    ones (400, 401, 403, 413, 422, 429, 503, added to every route by the app)."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(status, "refused")}
        for status in statuses
    }


def replay_aware(response: Response, outcome: OutcomeT) -> OutcomeT:
    """201 for a first execution; 200 for a replay (same id, same request),
    which answers the first outcome and changed nothing."""
    response.status_code = 200 if outcome.replayed else 201
    return outcome


REPLAYED = {"description": "a replay of an earlier request with the same id: its first answer"}
