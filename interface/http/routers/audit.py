"""Audit: replay the log against the read models; read the raw events."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from interface.http.deps import IS_ADMIN, Queries, in_thread
from interface.http.schemas.requests import AuditReplayRequest
from interface.http.schemas.responses import EventsResponse, ReplayResponse
from interface.http.schemas.types import POSITION_MAX, in_utc
from projections.queries import DEFAULT_PAGE_SIZE, PAGE_SIZE_MAX

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.post("/replay", response_model=ReplayResponse, dependencies=[IS_ADMIN])
async def replay(queries: Queries, body: AuditReplayRequest | None = None):
    body = body or AuditReplayRequest()
    report = await in_thread(queries.audit_replay, until_position=body.until_position,
                             until=in_utc(body.until))
    return ReplayResponse.of(report)


@router.get("/events", response_model=EventsResponse, dependencies=[IS_ADMIN])
async def events(
    queries: Queries,
    aggregate_id: UUID | None = None,
    after_position: Annotated[int, Query(ge=0, le=POSITION_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = DEFAULT_PAGE_SIZE,
):
    found = await in_thread(queries.audit_events, aggregate_id=aggregate_id,
                            after_position=after_position, limit=limit)
    return EventsResponse.of(found, limit)
