"""Service prices: rules with validity windows (admin), and what is in force."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response

from application import commands as c
from interface.http.deps import CAN_READ, AdminCommand, Queries, Read, in_thread, planned
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED_STATE, keyed, refusals, replay_aware
from interface.http.schemas.requests import PriceRuleRequest
from interface.http.schemas.responses import (
    PriceRuleDeactivatedResponse,
    PriceRuleResponse,
    PricingResponse,
    ServicePricingResponse,
)
from interface.http.schemas.types import POSITION_MAX, ServiceType

router = APIRouter(prefix="/v1/pricing", tags=["pricing"], route_class=JsonRoute)


@router.put("/{service_type}", response_model=PriceRuleResponse, responses={200: REPLAYED_STATE})
async def set_price_rule(service_type: ServiceType, body: PriceRuleRequest, sent: AdminCommand,
                         response: Response):
    command = keyed(body.command(service_type), sent.key, what="a price rule")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return PriceRuleResponse.of(outcome)


RulePosition = Annotated[int, Path(ge=1, le=POSITION_MAX, description=(
    "the log position of the event that set the rule, as GET /v1/pricing/{service_type} "
    "lists it"))]


@router.post("/{service_type}/rules/{position}/deactivate",
             response_model=PriceRuleDeactivatedResponse,
             responses={200: REPLAYED_STATE, **refusals(404)})
async def deactivate_price_rule(service_type: ServiceType, position: RulePosition,
                                sent: AdminCommand, response: Response):
    """Withdraw a rule: the price falls back to the rule set before it, or
    the default. Idempotent by the rule, as a repeated PUT is by the price:
    a rule no longer active (deactivated, ended or replaced) answers 200
    with Idempotent-Replayed: true and writes nothing."""
    version = await in_thread(sent.ledger.price_rule_version, service_type, position)
    command = keyed(c.DeactivatePriceRule(service_type, position, version), sent.key,
                    what="a price rule's deactivation")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller), created=False)
    return PriceRuleDeactivatedResponse.of(outcome)


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
