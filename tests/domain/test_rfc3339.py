"""The one time parser: RFC 3339 section 5.6 exactly, every time input's rule."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.errors import InvalidRequest
from domain.rfc3339 import parse_time
from tests.support.time_texts import ACCEPTED, REFUSED


@pytest.mark.parametrize(("text", "instant"), ACCEPTED.items(), ids=list(ACCEPTED))
def test_rfc3339_times_parse_to_the_utc_instant_they_name(text, instant):
    parsed = parse_time(text)
    assert parsed.tzinfo is UTC
    assert parsed.isoformat() == instant


@pytest.mark.parametrize(("text", "reason"), REFUSED.items(), ids=list(REFUSED))
def test_other_texts_are_refused_naming_the_field_and_the_rule(text, reason):
    with pytest.raises(InvalidRequest) as refusal:
        parse_time(text, "until")
    assert refusal.value.message.startswith("until: ")
    assert reason in refusal.value.message


@pytest.mark.parametrize("value", [None, 1700000000, 1.5, b"2026-11-30T22:13:05Z", True])
def test_values_that_are_not_text_are_refused(value):
    with pytest.raises(InvalidRequest, match="string"):
        parse_time(value, "at")


@given(st.datetimes(timezones=st.timezones()))
def test_every_instant_written_in_rfc3339_reads_back_exactly(moment):
    """isoformat() of an aware datetime with whole-minute offsets is RFC 3339;
    the parser gives the same instant back, or refuses it as out of range
    (a local time near year 1 or 9999 whose UTC instant is not)."""
    offset = moment.utcoffset()
    assume(offset is not None and offset.seconds % 60 == 0)
    text = moment.isoformat(timespec="microseconds")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        with pytest.raises(InvalidRequest, match="outside"):
            parse_time(text)
        return
    assert parse_time(text) == utc
