"""Times as the read models store them: integer microseconds since the
epoch (UTC). Exact, index-friendly, and the same type on SQLite and
PostgreSQL; events carry ISO text, which ``micros`` converts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MICROS_CACHED_MAX = 10_000

_micros_cache: dict[str, int] = {}


def micros(iso: str | None) -> int | None:
    """ISO time text -> integer microseconds. Commands of one batch share
    one timestamp, so a small cache saves most parsing."""
    if iso is None:
        return None
    value = _micros_cache.get(iso)
    if value is None:
        if len(_micros_cache) > _MICROS_CACHED_MAX:
            _micros_cache.clear()
        value = to_micros(datetime.fromisoformat(iso))
        _micros_cache[iso] = value
    return value


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must carry a timezone")
    return (moment - _EPOCH) // _ONE_MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _ONE_MICROSECOND


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``: how every answer writes a time."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
