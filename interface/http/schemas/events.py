"""Answers of the business event routes (``/v1/events``, ``/v1/webhooks``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interface.http.schemas.responses import Response
from projections.event_stream import StreamPage


class BusinessEventItem(Response):
    id: str = Field(description="the same on every read and delivery (evt_<position>)")
    position: int
    type: str
    occurred_at: str = Field(description="the commit's time (RFC 3339, Z)")
    data: dict[str, Any]


class EventsPage(Response):
    items: list[BusinessEventItem]
    next_after: int = Field(description="pass as `after` for the next page or the next poll "
                                        "(where this page's scan of the log stopped)")
    has_more: bool = Field(description="the log holds more past `next_after` now")
    position: int = Field(description="the log's head this page was read up to")

    @classmethod
    def of(cls, page: StreamPage) -> EventsPage:
        return cls(items=[BusinessEventItem(**event.as_dict()) for event in page.events],
                   next_after=page.next_after, has_more=page.has_more, position=page.head)
