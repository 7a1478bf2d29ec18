"""Which price rule a log position names, for deactivating it.

The API names a rule by the log position of the event that set it (as
``GET /v1/pricing/{service_type}`` lists them); the schedule knows its
rules by their event's version. One indexed read of the log maps one to
the other, strongly consistent, so a rule just set can be withdrawn at
once, before any read model has caught up.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from application.eventlog.decoder import EventDecoder
from domain.errors import PriceRuleNotFound
from domain.pricing import PriceSchedule
from domain.system import PRICE_SCHEDULE_ID

_RULE_SET_TOPIC = get_topic(PriceSchedule.RuleSet)


def price_rule_version(event_log: Any, decoder: EventDecoder, service_type: str,
                       position: int) -> int:
    """The schedule's version that set the ``service_type`` rule at
    ``position``; PriceRuleNotFound when no such rule was set there."""
    found = event_log.read(position - 1, 1, upto=position) if position >= 1 else []
    event = found[0] if found else None
    if (event is None or event.position != position
            or event.originator_id != PRICE_SCHEDULE_ID.hex or event.topic != _RULE_SET_TOPIC
            or decoder.fields(event.state).get("service_type") != service_type):
        raise PriceRuleNotFound(
            f"no {service_type} price rule was set at position {position}; "
            f"GET /v1/pricing/{service_type} lists each rule's position")
    return int(event.version)
