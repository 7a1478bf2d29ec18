"""Service fees, priced at the moment of the charge and paid to the treasury."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from interface.http.deps import CAN_WRITE, Ledger
from interface.http.routers import REPLAYED, refusals, replay_aware
from interface.http.schemas.requests import FeeRequest
from interface.http.schemas.responses import FeeResponse
from interface.http.system_accounts import check_system_debit

router = APIRouter(prefix="/v1/fees", tags=["fees"])


@router.post("", status_code=201, response_model=FeeResponse, dependencies=[CAN_WRITE],
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def charge_fee(body: FeeRequest, ledger: Ledger, response: Response, request: Request):
    command = check_system_debit(request, body.command())
    outcome = replay_aware(response, await ledger.execute(command))
    return FeeResponse.of(outcome)
