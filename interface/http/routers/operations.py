"""Probes and metrics, open to anyone who can reach the port (no ledger
data beyond what /metrics aggregates)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from application.errors import LedgerUnavailable
from application.settlement import metrics as settlement_metrics
from interface.http.deps import Ledger, in_thread
from interface.http.errors import error_response
from interface.http.json_body import JsonRoute
from interface.http.routers import refusals
from interface.http.schemas.responses import HealthResponse, ReadyResponse, SettlementState
from projections.ledger_metrics import exposition
from projections.system_balance_metrics import SYSTEM_BALANCES

router = APIRouter(tags=["operations"], route_class=JsonRoute)


@router.get("/health", response_model=HealthResponse, description="The process is up.")
async def get_health():
    return HealthResponse()


@router.get(
    "/ready", response_model=ReadyResponse, responses=refusals(503),
    description="The event store answers and the read models are within "
                "DEALS_READY_MAX_LAG positions of the log, and the projector is not "
                "stopped at an event it cannot apply, and the read models are not past "
                "the log's head (a log restored without them: DEALS_REBUILD_RESTORED_READ_MODELS "
                "lets the projector rebuild them); else 503 unavailable.",
)
async def get_readiness(ledger: Ledger):
    try:
        store_position = await in_thread(ledger.store_position)
        read_position = await in_thread(_read_model_position, ledger)
    except LedgerUnavailable as error:
        return error_response(error)
    stalled_at = ledger.projection_stalled_at()
    if stalled_at is not None:
        return error_response(LedgerUnavailable(
            f"the projector stopped at position {stalled_at}: it cannot apply that event"))
    if read_position > store_position:
        return error_response(LedgerUnavailable(
            f"the read models stand at position {read_position}, past the event log's head "
            f"{store_position}: the log was restored without them; start with "
            "DEALS_REBUILD_RESTORED_READ_MODELS=on to rebuild them from the log "
            "(docs/operations.md, Backups)"))
    lag = store_position - read_position
    if lag > ledger.settings.ready_lag_max:
        return error_response(LedgerUnavailable(f"the read models are {lag} positions behind"))
    settlement = await in_thread(ledger.settlement_state)
    return ReadyResponse(store_position=store_position, read_model_position=read_position,
                         settlement=SettlementState(**settlement))


def _read_model_position(ledger) -> int:
    try:
        return ledger.queries.position()
    except Exception as error:
        raise LedgerUnavailable(f"the read models do not answer ({type(error).__name__})") from None


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})
async def get_metrics():
    body, content_type = await in_thread(exposition, settlement_metrics.LIVENESS, SYSTEM_BALANCES)
    return Response(body, media_type=content_type)


