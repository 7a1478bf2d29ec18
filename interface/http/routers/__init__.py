"""One router per resource; each route parses, calls one application or
query function, and renders. Scopes are declared on each route with
``dependencies=[CAN_READ | IS_ADMIN]``, or by a command route's one
dependency, ``sent: WriteCommand | AdminCommand`` (``deps.Sending``)."""

from __future__ import annotations

from typing import Any

from interface.http.errors import STATUS_BY_CODE
from interface.http.idempotency import REPLAYED, REPLAYED_STATE, keyed, replay_aware
from interface.http.schemas.responses import ErrorResponse

__all__ = ["REPLAYED", "REPLAYED_STATE", "keyed", "refusals", "replay_aware"]


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route can answer besides the common
    ones (400, 401, 403, 413, 422, 429, 503, added to every route by the app).
    Each lists the error codes of that status, read from the one status
    table, so a new refusal is described without another list to update."""
    return {status: {"model": ErrorResponse, "description": _codes_of(status)}
            for status in statuses}


def _codes_of(status: int) -> str:
    codes = sorted(code for code, code_status in STATUS_BY_CODE.items() if code_status == status)
    return "refused: " + (", ".join(codes) if codes else "see the error code")

