"""The raw audit listing's decoded fields: every stored amount field is
known, so none is left in base units only, and a count is never shown as
DEAL."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone

from projections.business_events import MAPPINGS, NOT_PUBLISHED
from projections.decoded_fields import AMOUNT_FIELDS, COUNT_FIELDS, decoded_fields


def _int_fields(event_class: type) -> set[str]:
    hints = typing.get_type_hints(event_class)
    return {name for name, hint in hints.items()
            if hint is int or (typing.get_origin(hint) in (typing.Union, type(int | None))
                               and int in typing.get_args(hint))}


def test_every_stored_int_field_is_an_amount_or_a_count():
    stored = set(MAPPINGS) | set(NOT_PUBLISHED)
    named = {name for event_class in stored for name in _int_fields(event_class)}
    assert named, "no int field found: the walk is broken"
    assert named - AMOUNT_FIELDS - COUNT_FIELDS == set()
    assert not AMOUNT_FIELDS & COUNT_FIELDS
    assert {"amount", "token_cost", "expected", "balance_after"} <= named


def test_amounts_become_decimal_text_and_times_end_in_z_beside_the_rest():
    moment = datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=timezone(timedelta(hours=2)))
    state = {"amount": 150_000_000, "expected": None, "slot": 7, "reason": "x",
             "timestamp": moment, "valid_to": None, "kind": "fee"}
    decoded = decoded_fields(state)
    assert decoded == {"amount": "1.5", "expected": None,
                       "timestamp": "2026-01-02T01:04:05.600000Z"}
    assert state["amount"] == 150_000_000  # the stored state is left as it was
    assert decoded_fields({"timestamp": datetime(2026, 1, 1, tzinfo=UTC)}) == {
        "timestamp": "2026-01-01T00:00:00Z"}
