"""Every stored event is declared by the business event mapping: published
under a public type or listed as no business event of its own, so a new
event class cannot be left out of the subscribers' stream without a word."""

from __future__ import annotations

from projections.business_events import EVENT_TYPES, MAPPINGS, NOT_PUBLISHED
from tests.support.registries import undeclared_events


def test_every_stored_event_is_published_or_listed_as_not_published():
    undeclared = undeclared_events(list(MAPPINGS), NOT_PUBLISHED)
    assert not undeclared, undeclared


def test_public_types_are_distinct_and_named_resource_dot_past_tense():
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)
    assert all(name.count(".") == 1 and name == name.lower() for name in EVENT_TYPES)
