"""Every stored event is declared by the settlement fold: handled or listed
as not shown, so a new event cannot pass it by unnoticed."""

from __future__ import annotations

from application.settlement.fold import HANDLED, NOT_SHOWN
from tests.support.registries import undeclared_events


def test_every_stored_event_is_handled_or_listed_as_not_shown():
    undeclared = undeclared_events(HANDLED, NOT_SHOWN)
    assert not undeclared, undeclared
