"""Holds: reserve funds (two-phase fees), capture all or part, void."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from application import commands as c
from interface.http.deps import WriteCommand
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import CaptureRequest, HoldRequest, VoidRequest
from interface.http.schemas.responses import (
    HoldCapturedResponse,
    HoldReleasedResponse,
    HoldResponse,
)

router = APIRouter(prefix="/v1/holds", tags=["holds"], route_class=JsonRoute)


@router.post("", status_code=201, response_model=HoldResponse,
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def place_hold(body: HoldRequest, sent: WriteCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return HoldResponse.of(outcome)


@router.post("/{hold_id}/capture", response_model=HoldCapturedResponse,
             responses={200: REPLAYED, **refusals(404, 409, 423)})
async def capture_hold(hold_id: UUID, sent: WriteCommand, response: Response,
                       body: CaptureRequest | None = None):
    command = keyed((body or CaptureRequest()).command(hold_id), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return HoldCapturedResponse.of(outcome)


@router.post("/{hold_id}/void", response_model=HoldReleasedResponse,
             responses={200: REPLAYED, **refusals(404, 409, 423)})
async def void_hold(hold_id: UUID, sent: WriteCommand, response: Response,
                    body: VoidRequest | None = None):
    command = keyed(c.VoidHold(hold_id), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return HoldReleasedResponse.of(outcome)
