"""Audit: replay the log against the read models; read the raw events."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from application.errors import SettlementUnavailable
from application.settlement.chain_port import ChainError
from domain.errors import InvalidRequest
from interface.http.deps import IS_ADMIN, Ledger, Queries, Read, in_thread, planned
from interface.http.json_body import JsonRoute
from interface.http.schemas.requests import AuditReplayRequest
from interface.http.schemas.responses import (
    AnchorAuditItem,
    EventsResponse,
    ReplayResponse,
)
from interface.http.schemas.types import POSITION_MAX
from interface.wiring.service import LedgerService
from projections.queries import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from projections.read_models import AUDIT_WAIT_S_MIN, UNTIL_EITHER

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=JsonRoute)


@router.post(
    "/replay", response_model=ReplayResponse, dependencies=[IS_ADMIN],
    description="Replay the log into fresh state and compare it with the read models; for "
                "the whole log, also check it against every anchor on chain (`anchors`). "
                "`until_position` is rounded down to the last commit that ends at or before "
                "it (`position` says which); past the log's head it is 422 "
                "position_past_head. Waits (up to 30 s, longer than a query's 5 s: it "
                "compares every read model) for the read models to reach the log's head "
                "first; `consistency` and `min_position` as for every query.",
)
async def audit_replay(queries: Queries, ledger: Ledger, read: Read,
                 body: AuditReplayRequest | None = None):
    body = body or AuditReplayRequest()
    until_position = body.until_position
    if body.until is not None:  # a time names the last whole commit at or before it
        if until_position is not None:
            raise InvalidRequest(UNTIL_EITHER)
        until_position = await in_thread(queries.position_at, body.until)
    point = await planned(queries, read, at_position=until_position,
                          at_name="until_position", timeout_s=AUDIT_WAIT_S_MIN)
    report = await in_thread(queries.audit_replay, point=point)
    whole_log = body.until_position is None and body.until is None
    anchors = await in_thread(_anchor_audit, ledger) if whole_log else None
    return ReplayResponse.of(report, anchors)


def _anchor_audit(ledger: LedgerService) -> AnchorAuditItem:
    try:
        audit = ledger.audit_anchors()
    except (SettlementUnavailable, ChainError) as error:
        return AnchorAuditItem.unchecked(str(error))
    return AnchorAuditItem.of(audit)


@router.get(
    "/events", response_model=EventsResponse, dependencies=[IS_ADMIN],
    description="Stored events in log order, up to the log's head when the request arrived "
                "(`position`). `after_position` is rounded down to the last commit that ends "
                "at or before it (`after_position` in the answer); a page ends where a commit "
                "ends, so it may hold fewer events than `limit`, or more when one commit alone "
                "holds more. A row that cannot be decoded is listed with `decode_error`. "
                "`consistency` and `min_position` as for every query (the events are read "
                "from the log itself, which holds every acknowledged command, so neither "
                "waits; `min_position` past the head is 422 position_past_head).",
)
async def list_audit_events(
    queries: Queries,
    read: Read,
    aggregate_id: UUID | None = None,
    after_position: Annotated[int, Query(ge=0, le=POSITION_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
):
    point = await in_thread(queries.plan, read.consistency, read.min_position, after_position,
                            "after_position")
    found = await in_thread(queries.audit_events, aggregate_id=aggregate_id, limit=limit,
                            point=point)
    return EventsResponse.of(found)
