"""Service fees, priced at the moment of the charge and paid to the treasury."""

from __future__ import annotations

from fastapi import APIRouter, Response

from interface.http.deps import WriteCommand
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import FeeRequest
from interface.http.schemas.responses import FeeResponse

router = APIRouter(prefix="/v1/fees", tags=["fees"], route_class=JsonRoute)


@router.post("", status_code=201, response_model=FeeResponse,
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def charge_fee(body: FeeRequest, sent: WriteCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return FeeResponse.of(outcome)
