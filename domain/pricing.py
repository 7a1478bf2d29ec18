"""The PriceSchedule aggregate: what each service costs, and when.

A fee is priced once, when it is charged, and the price is written into the
fee's events; replaying the log never asks the schedule again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain.amounts import UNITS_PER_DEAL, check_amount
from domain.errors import InvalidRequest, UnknownServiceType

PRICES_DEFAULT: dict[str, int] = {
    "search": UNITS_PER_DEAL // 10,
    "goal": UNITS_PER_DEAL,
    "analysis": UNITS_PER_DEAL // 2,
    "notification": UNITS_PER_DEAL // 20,
}
SERVICE_TYPES = tuple(PRICES_DEFAULT)
RULES_PER_SERVICE_MAX = 1000


def check_service_type(service_type: object) -> str:
    if not isinstance(service_type, str) or service_type not in PRICES_DEFAULT:
        raise UnknownServiceType(
            f"unknown service type {service_type!r}; known: {', '.join(SERVICE_TYPES)}"
        )
    return str(service_type)


class PriceSchedule(Aggregate):
    """Rules per service type, each with an optional validity window. The rule
    set last that covers a moment wins; with none, the default price holds."""

    class Started(Aggregate.Created):
        pass

    class RuleSet(Aggregate.Event):
        service_type: str
        token_cost: int
        valid_from: datetime | None
        valid_to: datetime | None

        def apply(self, schedule: PriceSchedule) -> None:
            schedule.add_rule({
                "service_type": self.service_type,
                "token_cost": self.token_cost,
                "valid_from": self.valid_from,
                "valid_to": self.valid_to,
                "set_at": self.timestamp,
                "version": self.originator_version,
            })

    class RuleDeactivated(Aggregate.Event):
        """An admin withdrew the rule set by this schedule's event
        ``rule_version``: it decides no price from then on, and the price
        falls back to the rule set before it (or the default)."""

        service_type: str
        rule_version: int
        rule_position: int | None = None
        """The log position of the event that set the rule (what the API
        names it by), for the read models; the schedule needs only the
        version."""

        def apply(self, schedule: PriceSchedule) -> None:
            schedule.drop_rule(self.service_type, self.rule_version)

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def drop_rule(self, service_type: str, rule_version: int) -> None:
        _number_legacy_rules(self.rules)
        self.rules = [rule for rule in self.rules if not (
            rule["service_type"] == service_type and rule["version"] == rule_version)]

    def deactivate_rule(self, service_type: str, rule_version: int, now: datetime,
                        rule_position: int | None = None) -> bool:
        """Withdraw the kept rule set by event ``rule_version``; False
        (nothing written) when no kept rule of ``service_type`` has it: it
        was deactivated, ended or replaced already, so a repeat changes
        nothing. Whether the version set a rule at all is the caller's to
        check (the schedule keeps only the rules that can still decide)."""
        check_service_type(service_type)
        _number_legacy_rules(self.rules)
        if not any(rule["version"] == rule_version for rule in self.rules_for(service_type)):
            return False
        self.trigger_event(self.RuleDeactivated, service_type=service_type,
                           rule_version=rule_version, rule_position=rule_position,
                           timestamp=now)
        return True

    def add_rule(self, rule: dict[str, Any]) -> None:
        """Keep ``rule`` and drop the rules that can no longer decide a price
        from its moment on (``_still_decides``): a schedule holds the rules
        that matter, not every change ever made, so it never fills up. The
        log keeps every rule; a fee's price is written into its own events,
        so replaying the log never asks for a dropped rule."""
        _number_legacy_rules(self.rules)
        now = rule["set_at"]
        self.rules = [kept for kept in self.rules if _still_decides(kept, rule, now)]
        self.rules.append(rule)

    def price_at(self, service_type: str, when: datetime) -> int:
        check_service_type(service_type)
        for rule in reversed(self.rules):
            if rule["service_type"] == service_type and _covers(rule, when):
                return int(rule["token_cost"])
        return PRICES_DEFAULT[service_type]

    def rules_for(self, service_type: str) -> list[dict[str, Any]]:
        return [rule for rule in self.rules if rule["service_type"] == service_type]

    def rule_version(self, service_type: str) -> int | None:
        """The version of the event that set the latest rule of
        ``service_type`` (None: no rule)."""
        _number_legacy_rules(self.rules)
        versions = [int(rule["version"]) for rule in self.rules_for(service_type)]
        return versions[-1] if versions else None

    def set_rule(
        self,
        service_type: str,
        token_cost: int,
        valid_from: datetime | None,
        valid_to: datetime | None,
        now: datetime,
    ) -> bool:
        """Add a rule; False (nothing written) when the same rule is already
        the latest for that service type, so a repeated PUT changes nothing."""
        check_service_type(service_type)
        check_amount(token_cost)
        if valid_from and valid_to and valid_to <= valid_from:
            raise InvalidRequest("valid_to must be later than valid_from")
        existing = self.rules_for(service_type)
        if existing and _same_rule(existing[-1], token_cost, valid_from, valid_to):
            return False
        candidate = {"service_type": service_type, "valid_from": valid_from,
                     "valid_to": valid_to}
        if sum(_still_decides(rule, candidate, now) for rule in existing) >= RULES_PER_SERVICE_MAX:
            raise InvalidRequest(
                f"at most {RULES_PER_SERVICE_MAX} price rules per service type that can still "
                "decide a price (rules past their valid_to, or replaced from now on by a rule "
                "without an end, no longer count)")
        self.trigger_event(
            self.RuleSet, service_type=service_type, token_cost=token_cost,
            valid_from=valid_from, valid_to=valid_to, timestamp=now,
        )
        return True


def _still_decides(rule: dict[str, Any], new: dict[str, Any], now: datetime) -> bool:
    """Whether ``rule`` can still decide a price asked at ``now`` or later
    once ``new`` is set: not when it ended by ``now``, nor when ``new`` (of
    the same service type, set later so asked first) covers every moment
    from ``now`` on. Prices are asked at the moment of the command."""
    ends = rule["valid_to"]
    if ends is not None and ends <= now:
        return False
    if rule["service_type"] != new["service_type"]:
        return True
    starts_by_now = new["valid_from"] is None or new["valid_from"] <= now
    return not (starts_by_now and new["valid_to"] is None)


def active_rules(rules: list[dict[str, Any]], now: datetime) -> list[bool]:
    """For each rule of one service type (in the order set), whether it can
    still decide a price asked at ``now`` or later: not past its end, and
    not replaced by a later rule without an end that began by the time it
    was set (what ``add_rule`` drops)."""
    active = []
    for index, rule in enumerate(rules):
        later = rules[index + 1:]
        replaced = any(not _still_decides(rule, other, other["set_at"]) for other in later)
        ends = rule["valid_to"]
        active.append(not replaced and (ends is None or now < ends))
    return active


def _number_legacy_rules(rules: list[dict[str, Any]]) -> None:
    """Rules kept before rules carried their event's version (a snapshot of
    an older schedule) were never dropped: the Nth was set by version N+1."""
    for index, rule in enumerate(rules):
        rule.setdefault("version", index + 2)


def _covers(rule: dict[str, Any], when: datetime) -> bool:
    starts, ends = rule["valid_from"], rule["valid_to"]
    return (starts is None or starts <= when) and (ends is None or when < ends)


def _same_rule(
    rule: dict[str, Any], cost: int, valid_from: datetime | None, valid_to: datetime | None
) -> bool:
    return (rule["token_cost"], rule["valid_from"], rule["valid_to"]) == (cost, valid_from, valid_to)
