"""Rewards, paid from the rewards account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from interface.http.deps import WriteCommand
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import RewardRequest
from interface.http.schemas.responses import RewardResponse

router = APIRouter(prefix="/v1/rewards", tags=["rewards"], route_class=JsonRoute)


@router.post("", status_code=201, response_model=RewardResponse,
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def distribute_reward(body: RewardRequest, sent: WriteCommand,
                            response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return RewardResponse.of(outcome)
