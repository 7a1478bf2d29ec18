"""Allowances: how much a spender (an agent) may move for an owner."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from domain.amounts import format_amount
from interface.http.deps import CAN_READ, Ledger, Read, WriteCommand, in_thread
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED_STATE, keyed, refusals, replay_aware
from interface.http.schemas.requests import AllowanceRequest
from interface.http.schemas.responses import AllowanceResponse

router = APIRouter(prefix="/v1/allowances", tags=["allowances"], route_class=JsonRoute)


@router.put("/{owner}/{spender}", response_model=AllowanceResponse,
            responses={200: REPLAYED_STATE, **refusals(404, 423)})
async def set_allowance(owner: UUID, spender: UUID, body: AllowanceRequest, sent: WriteCommand,
                        response: Response):
    command = keyed(body.command(owner, spender), sent.key, what="an allowance")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return AllowanceResponse.of(outcome)


@router.get("/{owner}/{spender}", response_model=AllowanceResponse, dependencies=[CAN_READ],
            responses=refusals(404),
            description="What is left of the allowance, read from the owner's account itself "
                        "(strongly consistent).")
async def get_allowance(owner: UUID, spender: UUID, ledger: Ledger, read: Read):
    amount, position = await in_thread(ledger.read_at_head,
                                       lambda: ledger.allowance(owner, spender), read.min_position)
    return AllowanceResponse(owner=owner, spender=spender, amount=format_amount(amount),
                             position=position)
