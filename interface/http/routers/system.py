"""The system accounts, the mint, and the circulating supply."""

from __future__ import annotations

from fastapi import APIRouter

from domain.amounts import DECIMALS, format_amount
from domain.system import EXTERNAL_ID, ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from interface.http.deps import CAN_READ, Ledger, Read, in_thread
from interface.http.json_body import JsonRoute
from interface.http.schemas.responses import SystemAccounts, SystemResponse

router = APIRouter(prefix="/v1/system", tags=["system"], route_class=JsonRoute)


@router.get("", response_model=SystemResponse, dependencies=[CAN_READ])
async def get_system(ledger: Ledger, read: Read):
    supply, position = await in_thread(ledger.read_at_head, ledger.supply, read.min_position)
    return SystemResponse(
        accounts=SystemAccounts(treasury=TREASURY_ID, rewards=REWARDS_ID, issuance=ISSUANCE_ID,
                                external=EXTERNAL_ID),
        mint=ledger.mint_address, decimals=DECIMALS, supply=format_amount(supply),
        position=position,
    )
