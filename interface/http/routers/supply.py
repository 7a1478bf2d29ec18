"""Mint and burn: movements against the issuance account (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from interface.http.deps import AdminCommand
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import BurnRequest, MintRequest
from interface.http.schemas.responses import MovementResponse

router = APIRouter(prefix="/v1", tags=["supply"], route_class=JsonRoute)


@router.post("/mint", status_code=201, response_model=MovementResponse,
             responses={200: REPLAYED, **refusals(404, 409, 423)})
async def mint(body: MintRequest, sent: AdminCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return MovementResponse.of(outcome)


@router.post("/burn", status_code=201, response_model=MovementResponse,
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def burn(body: BurnRequest, sent: AdminCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return MovementResponse.of(outcome)
