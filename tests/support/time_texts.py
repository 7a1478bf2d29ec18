"""The one table of time texts every time input must treat alike: what RFC
3339 section 5.6 allows (accepted, with the UTC instant it names) and what it
does not or this service cannot represent (refused, with a word the refusal
must contain). The parser's own test and the edge tests (query parameter,
body fields, CLI option) all read it, so no edge can drift from another."""

from __future__ import annotations

ACCEPTED: dict[str, str] = {
    "2026-11-30T22:13:05Z": "2026-11-30T22:13:05+00:00",
    "2026-11-30t22:13:05z": "2026-11-30T22:13:05+00:00",
    "2026-11-30T22:13:05.5Z": "2026-11-30T22:13:05.500000+00:00",
    "2026-11-30T22:13:05.123456Z": "2026-11-30T22:13:05.123456+00:00",
    "2026-11-30T22:13:05.123456000Z": "2026-11-30T22:13:05.123456+00:00",
    "2026-11-30T23:13:05+01:00": "2026-11-30T22:13:05+00:00",
    "2026-11-30T22:13:05-00:00": "2026-11-30T22:13:05+00:00",
    "2026-12-01T08:43:05+10:30": "2026-11-30T22:13:05+00:00",
    "2026-11-29T22:14:05-23:59": "2026-11-30T22:13:05+00:00",
    "2024-02-29T00:00:00Z": "2024-02-29T00:00:00+00:00",
    "0001-01-01T00:00:00Z": "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00-01:00": "0001-01-01T01:00:00+00:00",
    "9999-12-31T23:59:59.999999Z": "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:59:59+01:00": "9999-12-31T22:59:59+00:00",
}

REFUSED: dict[str, str] = {
    "20261130T221305Z": "RFC 3339",           # ISO 8601 basic format
    "2026-W49-1T22:13:05Z": "RFC 3339",       # week date
    "2026-334T22:13:05Z": "RFC 3339",         # ordinal date
    "2026-11-30 22:13:05Z": "RFC 3339",       # space for the T
    "2026-11-30T22:13Z": "RFC 3339",          # no seconds
    "2026-11-30T22:13:05": "offset",          # local time: no offset
    "2026-11-30": "RFC 3339",                 # a date alone
    "2026-11-30T22:13:05+0100": "RFC 3339",   # offset without a colon
    "2026-11-30T22:13:05+01": "RFC 3339",
    "2026-11-30T22:13:05.Z": "RFC 3339",      # a dot without digits
    "2026-11-30T22:13:05,5Z": "RFC 3339",     # comma fraction
    "+2026-11-30T22:13:05Z": "RFC 3339",      # expanded year
    "10000-01-01T00:00:00Z": "RFC 3339",
    " 2026-11-30T22:13:05Z": "RFC 3339",
    "2026-11-30T22:13:05Z\n": "RFC 3339",
    "２０２６-11-30T22:13:05Z": "RFC 3339",     # fullwidth digits
    "1700000000": "RFC 3339",                  # a Unix time (not for ``at``: a position)
    "-1": "RFC 3339",
    "yesterday": "RFC 3339",
    "2026-02-29T00:00:00Z": "calendar",       # not a leap year
    "2026-13-01T00:00:00Z": "calendar",
    "2026-11-31T00:00:00Z": "calendar",
    "2026-11-30T24:00:00Z": "calendar",
    "2026-11-30T22:60:00Z": "calendar",
    "0000-01-01T00:00:00Z": "calendar",
    "2016-12-31T23:59:60Z": "leap second",
    "2026-11-30T22:13:05.1234567Z": "microsecond",
    "2026-11-30T22:13:05+24:00": "offset",
    "2026-11-30T22:13:05+01:60": "offset",
    "0001-01-01T00:00:00+01:00": "outside",   # year 0 in UTC
    "9999-12-31T23:59:59-01:00": "outside",   # year 10000 in UTC
    "2026-11-30T22:13:05." + "0" * 60 + "Z": "longer",
}
