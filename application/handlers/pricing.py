"""Price rules for the service fees."""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.handlers.movements import price_schedule
from application.handlers.session import AggregateSession
from application.outcomes import PriceRuleDeactivated, PriceRuleSet


def set_price_rule(command: c.SetPriceRule, session: AggregateSession, now: datetime) -> PriceRuleSet:
    schedule = price_schedule(session)
    changed = schedule.set_rule(
        command.service_type, command.token_cost, command.valid_from, command.valid_to, now
    )
    session.set_primary(schedule.id)
    version = schedule.rule_version(command.service_type) or schedule.version
    return PriceRuleSet(
        service_type=command.service_type, token_cost=command.token_cost,
        valid_from=command.valid_from, valid_to=command.valid_to, replayed=not changed,
        answered_by=((schedule.id, version),),
    )


def deactivate_price_rule(
    command: c.DeactivatePriceRule, session: AggregateSession, now: datetime
) -> PriceRuleDeactivated:
    schedule = price_schedule(session)
    changed = schedule.deactivate_rule(
        command.service_type, command.rule_version, now, rule_position=command.position)
    session.set_primary(schedule.id)
    return PriceRuleDeactivated(
        service_type=command.service_type, rule_position=command.position, replayed=not changed,
        answered_by=((schedule.id, schedule.version),),
    )
