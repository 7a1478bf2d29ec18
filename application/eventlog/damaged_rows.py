"""Where an aggregate's stored events stop decoding: its first row the
mapper cannot read, or that the aggregate cannot apply (a missing field
fails only there). Here because it reads the events table, which only this
package does (tests/eventlog/test_boundary.py); the write side and the
start-up use it to name a damaged row (application.write.damaged)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

PAGE_ROWS = 1_000


def first_undecodable_position(app: Any, aggregate_id: Any, page: int = PAGE_ROWS) -> int | None:
    """The log position of the aggregate's first row that cannot be read
    or applied: a scan of the whole log, so only for a start that cannot go
    on (never per command)."""
    after, mine = 0, list[Any]()
    while rows := app.recorder.select_notifications(after + 1, page):
        mine.extend(row for row in rows if row.originator_id == aggregate_id)
        after = rows[-1].id
    bad = _first_bad(app, mine)
    return None if bad is None else int(bad.id)


def first_undecodable_version(app: Any, aggregate_id: UUID) -> int | None:
    """The version of its first stored event the mapper cannot read, or
    that the aggregate cannot apply; None when that cannot be told."""
    try:
        stored = app.recorder.select_events(aggregate_id)
    except Exception:  # naming it is a courtesy; the refusal stands without
        return None
    bad = _first_bad(app, stored)
    return None if bad is None else int(bad.originator_version)


def _first_bad(app: Any, stored: Any) -> Any:
    aggregate = None
    for event in stored:
        try:
            aggregate = app.mapper.to_domain_event(event).mutate(aggregate)
        except Exception:
            return event
    return None
