"""Service prices: rules with validity windows (admin), and what is in force."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from interface.http.deps import (
    CAN_READ,
    IS_ADMIN,
    Caller,
    IdempotencyKey,
    Ledger,
    Queries,
    Read,
    in_thread,
    planned,
)
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED_STATE, keyed, replay_aware
from interface.http.schemas.requests import PriceRuleRequest
from interface.http.schemas.responses import (
    PriceRuleResponse,
    PricingResponse,
    ServicePricingResponse,
)
from interface.http.schemas.types import ServiceType

router = APIRouter(prefix="/v1/pricing", tags=["pricing"], route_class=JsonRoute)


@router.put("/{service_type}", response_model=PriceRuleResponse, dependencies=[IS_ADMIN],
            responses={200: REPLAYED_STATE})
async def set_price_rule(service_type: ServiceType, body: PriceRuleRequest, ledger: Ledger,
                         caller: Caller, response: Response, key: IdempotencyKey):
    command = keyed(body.command(service_type), key, what="a price rule")
    outcome = replay_aware(response, await ledger.execute(command, caller), created=False)
    return PriceRuleResponse.of(outcome)


@router.get("", response_model=PricingResponse, dependencies=[CAN_READ])
async def get_pricing(queries: Queries, read: Read):
    point = await planned(queries, read)
    return PricingResponse.of(await in_thread(queries.pricing, datetime.now(UTC), point=point))


@router.get("/{service_type}", response_model=ServicePricingResponse, dependencies=[CAN_READ])
async def get_service_pricing(service_type: ServiceType, queries: Queries, read: Read):
    """One service type: its cost now and every rule it was given, in the
    order they were set, each saying whether it can still decide a price."""
    point = await planned(queries, read)
    listing = await in_thread(queries.service_pricing, service_type, datetime.now(UTC),
                              point=point)
    return ServicePricingResponse.of(listing)
