"""Time text at the edges: the one parser of RFC 3339 date-times.

Every time a client or an operator gives (the balance's ``at``, the audit's
``until``, a price rule's ``valid_from`` / ``valid_to``, ``deals-ledger
replay --until``) is parsed here, so a time one edge accepts no other edge
refuses. The grammar is RFC 3339 section 5.6 ``date-time``, exactly:
``2026-11-30T22:13:05Z``, ``2026-11-30t22:13:05.25+01:00`` (lower-case
``t`` and ``z`` are the RFC's own allowance). Everything else ISO 8601 allows
is refused, never guessed at: basic format (``20261130T221305Z``), week and
ordinal dates, a space for the ``T``, missing seconds, a missing offset (a
local time names no instant), Unix times.

Like amounts, a time is refused rather than bent to fit: a leap second
(``23:59:60``) and digits finer than a microsecond (the resolution the
ledger stamps and stores events in) are refused, as is a time whose instant
falls outside ``0001-01-01T00:00:00Z`` .. ``9999-12-31T23:59:59.999999Z``
(``0001-01-01T00:00:00+01:00`` is in year 0), instead of being clamped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from domain.errors import InvalidRequest

TIME_TEXT_LENGTH_MAX = 64
"""No RFC 3339 time a client means to send is near this long."""
MICROSECOND_DIGITS = 6
EXAMPLE = "2026-01-01T00:00:00Z"

_DATE_TIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)


def parse_time(text: object, field: str | None = None) -> datetime:
    """The instant ``text`` names, as an aware ``datetime`` in UTC.

    ``field`` names the input in the error (``"at"``, ``"--until"``); without
    it the message is the rule alone (a caller that adds the field itself).
    Raises ``InvalidRequest`` for anything but an RFC 3339 date-time with an
    offset whose instant a ``datetime`` can hold to the microsecond.
    """
    if not isinstance(text, str):
        raise _refused(field, "must be an RFC 3339 time string")
    if len(text) > TIME_TEXT_LENGTH_MAX:
        raise _refused(field, f"is longer than {TIME_TEXT_LENGTH_MAX} characters")
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise _refused(field, f"must be an RFC 3339 date-time with seconds and an offset, "
                              f"such as {EXAMPLE}")
    return _instant(match, field)


def _instant(match: re.Match[str], field: str | None) -> datetime:
    parts = match.groupdict()
    if parts["second"] == "60":
        raise _refused(field, "is a leap second (:60), which this service cannot represent")
    try:
        local = datetime(
            int(parts["year"]), int(parts["month"]), int(parts["day"]), int(parts["hour"]),
            int(parts["minute"]), int(parts["second"]), _microseconds(parts["fraction"], field),
            tzinfo=_offset(parts, field),
        )
    except ValueError:
        raise _refused(field, "is not a date and time of the calendar") from None
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise _refused(field, "is outside the times this service represents "
                              "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z)") from None


def _microseconds(fraction: str | None, field: str | None) -> int:
    if fraction is None:
        return 0
    finer = fraction[MICROSECOND_DIGITS:]
    if finer.strip("0"):
        raise _refused(field, "is finer than a microsecond; send at most "
                              f"{MICROSECOND_DIGITS} fractional digits")
    return int(fraction[:MICROSECOND_DIGITS].ljust(MICROSECOND_DIGITS, "0"))


def _offset(parts: dict[str, str | None], field: str | None) -> timezone:
    if parts["sign"] is None:
        return UTC
    hours, minutes = int(parts["offset_hour"] or 0), int(parts["offset_minute"] or 0)
    if hours > 23 or minutes > 59:
        raise _refused(field, "has an offset outside -23:59 .. +23:59")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if parts["sign"] == "-" else delta)


def _refused(field: str | None, rule: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {rule}" if field else f"time {rule}")
