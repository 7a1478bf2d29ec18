"""Every stored event is declared by the read-model fold: handled (with the
rows a page must load for it) or listed as not shown. An event in neither
would be skipped without a word, or, when handled but its rows not loaded,
halt the projector on a page that holds it."""

from __future__ import annotations

from projections.ledger_fold import HANDLED, NOT_SHOWN
from tests.support.registries import stored_event_classes, undeclared_events


def test_every_stored_event_is_handled_or_listed_as_not_shown():
    undeclared = undeclared_events(HANDLED, NOT_SHOWN)
    assert not undeclared, undeclared


def test_the_walk_finds_nested_events_and_leaves_out_bases():
    from domain.account import Account

    stored = stored_event_classes()
    assert Account.Debited in stored and Account.Credited in stored
    assert Account.Posted not in stored and Account.Event not in stored
    assert Account.Created not in stored and Account.Opened in stored
