"""Service fees, priced at the moment of the charge and paid to the treasury."""

from __future__ import annotations

from fastapi import APIRouter, Response

from interface.http.deps import CAN_WRITE, Caller, IdempotencyKey, Ledger
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import FeeRequest
from interface.http.schemas.responses import FeeResponse

router = APIRouter(prefix="/v1/fees", tags=["fees"], route_class=JsonRoute)


@router.post("", status_code=201, response_model=FeeResponse, dependencies=[CAN_WRITE],
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def charge_fee(body: FeeRequest, ledger: Ledger, caller: Caller, response: Response,
                     key: IdempotencyKey):
    command = keyed(body.command(), key)
    outcome = replay_aware(response, await ledger.execute(command, caller))
    return FeeResponse.of(outcome)
