"""Withdrawals: DEAL out of custody to a wallet connected to the account.

``GET /v1/transfers/{withdrawal_id}`` follows one (kind ``withdrawal``): its
status, signature and slot, as for every movement."""

from __future__ import annotations

from fastapi import APIRouter, Response

from interface.http.deps import WithdrawCommand
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.requests import WithdrawalRequest
from interface.http.schemas.responses import WithdrawalResponse

router = APIRouter(prefix="/v1/withdrawals", tags=["withdrawals"], route_class=JsonRoute)


@router.post("", status_code=201, response_model=WithdrawalResponse,
             responses={200: REPLAYED, **refusals(402, 404, 409, 423)})
async def withdraw(body: WithdrawalRequest, sent: WithdrawCommand, response: Response):
    """Needs the `ledger:withdraw` scope (or `admin`): a write key alone is
    403 `forbidden`. Debits the account at once; the settler moves the tokens from its
    custody token account to the wallet's associated token account
    (created when missing). 404 ``wallet_not_found`` unless ``address`` is
    connected to the account; 409 ``wallet_cooling_down`` (with Retry-After)
    while it was connected less than DEALS_WITHDRAWAL_WALLET_COOLDOWN_S ago."""
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return WithdrawalResponse.of(outcome, command.address)
