"""Answers of the business event routes (``/v1/events``, ``/v1/webhooks``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from interface.http.schemas.requests import Request
from interface.http.schemas.responses import Response
from interface.http.schemas.types import POSITION_MAX
from interface.webhooks.subscriptions import Delivery, Subscription
from projections.business_events import EVENT_TYPES
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


class WebhookRequest(Request):
    webhook_id: UUID | None = Field(None, description=(
        "the subscription's id, yours to choose (generated when absent): sending the same "
        "request again with it creates nothing more"))
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://\S+$",
                     description="where events are POSTed (http:// or https://)")
    types: list[str] | None = Field(None, max_length=len(EVENT_TYPES), description=(
        "event types to deliver (default: all): " + ", ".join(EVENT_TYPES)))
    secret: str | None = Field(None, min_length=30, max_length=200, description=(
        "the Standard Webhooks signing secret, whsec_ and base64 of 24 to 64 random bytes; "
        "generated when absent (and then answered once, on this creation only)"))
    after: int | None = Field(None, ge=0, le=POSITION_MAX, description=(
        "deliver events after this log position (default: the log's head now: only what "
        "happens from now on)"))


class ReplayRequest(Request):
    from_position: int = Field(ge=1, le=POSITION_MAX, description=(
        "deliver again every event of the subscription's types at or after this position"))


class WebhookItem(Response):
    webhook_id: UUID
    url: str
    types: list[str] | None = Field(description="null: every type")
    delivered_position: int = Field(description="every event up to this position was "
                                                "acknowledged by the receiver")
    created_at: str

    @classmethod
    def of(cls, subscription: Subscription) -> WebhookItem:
        types = None if subscription.types is None else sorted(subscription.types)
        return cls(webhook_id=subscription.subscription_id, url=subscription.url, types=types,
                   delivered_position=subscription.delivered_position,
                   created_at=subscription.created_at)


class WebhookCreated(WebhookItem):
    secret: str | None = Field(description="the generated secret, shown this once (null when "
                                           "the request gave one)")


class WebhooksResponse(Response):
    items: list[WebhookItem]


class DeliveryItem(Response):
    event_id: str
    position: int
    type: str
    attempt: int
    outcome: str = Field(description="delivered (2xx) or failed")
    status: int | None = Field(description="the receiver's HTTP status (null: no answer)")
    error: str | None
    at: str

    @classmethod
    def of(cls, d: Delivery) -> DeliveryItem:
        return cls(event_id=d.event_id, position=d.position, type=d.event_type,
                   attempt=d.attempt, outcome=d.outcome, status=d.status, error=d.error, at=d.at)


class DeliveriesResponse(Response):
    items: list[DeliveryItem] = Field(description="the latest attempts, newest first")
