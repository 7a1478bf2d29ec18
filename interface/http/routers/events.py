"""Business events for subscribers: a page after a position, with a long
poll, and the same stream as Server-Sent Events.

The stream is read from the log (``projections.event_stream``); a long poll
that finds nothing new sleeps on the process's one ``EventFeed`` (an asyncio
future: no thread is held, and no read of its own per commit: the feed reads
each commit's events once for every waiter) until an event it wants comes
or ``wait_s`` (at most ``WAIT_S_MAX``) has passed. ``WaitSlots`` bounds how
many requests wait, per key and per process (429 ``rate_limited`` past it). The
SSE stream is that long poll in a loop; each event's SSE ``id`` is its
business id, which a reconnecting client sends back as ``Last-Event-ID``.
A stream ends after ``STREAM_S_MAX`` (the client reconnects where it left
off), so no connection lives forever or holds up a shutdown for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from domain.errors import InvalidRequest
from interface.http.deps import CAN_READ, in_thread
from interface.http.event_feed import EventFeed, WaitSlots, all_events_after
from interface.http.json_body import JsonRoute
from interface.http.schemas.events import EventsPage
from interface.http.schemas.types import POSITION_MAX
from interface.wiring.service import LedgerService
from projections.business_events import EVENT_TYPES, event_id
from projections.event_stream import EventStream, StreamPage
from projections.progress import Progress
from projections.queries import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PositionPastHead

WAIT_S_MAX = 30.0
"""The longest a long poll waits for a new event (``wait_s``)."""
STREAM_S_MAX = 300.0
"""An SSE stream ends after this long; the client resumes with Last-Event-ID."""
STREAM_POLL_S = 5.0
"""An SSE stream's wait per poll (then it checks the client is still there)."""
RECONNECT_MS = 1000
"""The ``retry:`` an SSE client waits before it reconnects."""

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=JsonRoute)

After = Annotated[int, Query(ge=0, le=POSITION_MAX, description=(
    "list events after this log position (0: from the start; a page's `next_after` to go on)"))]
Types = Annotated[str | None, Query(max_length=1000, description=(
    "comma-separated event types to list (default: all): " + ", ".join(EVENT_TYPES)))]


def parse_types(text: str | None) -> frozenset[str] | None:
    """``types=`` as a set; an unknown type is refused, never ignored."""
    if text is None or not text.strip():
        return None
    asked = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(asked - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequest(f"types: unknown event type {unknown[0]!r}; known: "
                             + ", ".join(EVENT_TYPES))
    return asked


def stream_of(request: Request) -> tuple[EventStream, Progress]:
    service: LedgerService = request.app.state.service
    service.refuse_if_store_down()
    return service.read_side.events, service.read_side.progress


def read_page(stream: EventStream, after: int, limit: int,
              types: frozenset[str] | None) -> StreamPage:
    """One page up to the head now; a position past the head is refused."""
    head = stream.head()
    if after > head:
        raise PositionPastHead("after", after, head)
    return stream.page(after, limit, types, upto=head)


def feed_of(request: Request) -> EventFeed:
    """The process's one ``EventFeed`` (made on first use, on this loop)."""
    stream, progress = stream_of(request)
    state = request.app.state
    feed = getattr(state, "event_feed", None)
    if feed is None or feed.loop is not asyncio.get_running_loop():
        async def read_all(after: int, limit: int, types: frozenset[str] | None) -> StreamPage:
            return await in_thread(stream.page, after, limit, types)
        feed = state.event_feed = EventFeed(all_events_after(read_all), progress)
    return feed


def slots_of(request: Request) -> WaitSlots:
    state = request.app.state
    slots = getattr(state, "wait_slots", None)
    if slots is None:
        slots = state.wait_slots = WaitSlots()
    return slots


def key_of(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else ""


async def poll(stream: EventStream, feed: EventFeed, after: int, limit: int,
               types: frozenset[str] | None, wait_s: float) -> StreamPage:
    """A page with events, or an empty one once ``wait_s`` has passed.
    One read of its own; then it sleeps on the shared feed (no read of its
    own per commit), reading again only if the feed had already read past it."""
    deadline = time.monotonic() + wait_s
    cursor = after
    while True:
        page = await in_thread(read_page, stream, cursor, limit, types)
        remaining = deadline - time.monotonic()
        if page.events or page.has_more or remaining <= 0:
            return StreamPage(page.events, after, page.next_after, page.head)
        waited = await feed.wait(page.next_after, limit, types, remaining)
        if waited is not None:
            return StreamPage(waited.events, after, waited.next_after, waited.head)
        cursor = page.next_after


async def follow(stream: EventStream, feed: EventFeed, after: int, limit: int,
                 types: frozenset[str] | None, wait_s: float) -> StreamPage:
    """``poll`` from a cursor already read up to: straight to the feed."""
    waited = await feed.wait(after, limit, types, wait_s)
    if waited is not None:
        return StreamPage(waited.events, after, waited.next_after, waited.head)
    return await poll(stream, feed, after, limit, types, wait_s)


@router.get(
    "", response_model=EventsPage, dependencies=[CAN_READ],
    description="Business events after a log position, in log order (each with its `position` "
                "and an `id` that stays the same on every read). Cursor-paged: pass a "
                "page's `next_after` as `after`; `has_more` says whether the log holds more "
                "past it. With `wait_s`, a page that would be empty waits (at most "
                f"{WAIT_S_MAX:g} s) for the next event. `after` past the log's head is 422 "
                "position_past_head; an unknown type is 422 invalid_request.",
)
async def list_events(
    request: Request,
    after: After = 0,
    types: Types = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
    wait_s: Annotated[float, Query(ge=0, le=WAIT_S_MAX, description=(
        f"long poll: wait up to this many seconds (at most {WAIT_S_MAX:g}) for an event "
        "when none is there yet; 0 (default) answers at once"))] = 0,
):
    stream, _ = stream_of(request)
    wanted = parse_types(types)
    if not wait_s:
        return EventsPage.of(await poll(stream, feed_of(request), after, limit, wanted, 0))
    with slots_of(request).slot(key_of(request)):
        page = await poll(stream, feed_of(request), after, limit, wanted, wait_s)
    return EventsPage.of(page)


def resume_after(
    after: After = 0,
    last_event_id: Annotated[str | None, Header(max_length=40, description=(
        "the id of the last event received (evt_<position>); resumes after it, "
        "overriding `after`"))] = None,
) -> int:
    """Where a stream starts: after the event a reconnecting client saw last."""
    if last_event_id is None:
        return after
    text = last_event_id.strip().removeprefix("evt_")
    if not text.isdigit() or int(text) > POSITION_MAX or last_event_id.strip() != event_id(int(text)):
        raise InvalidRequest("Last-Event-ID: not an event id (evt_<position>)")
    return int(text)


async def sse_events(request: Request, after: int, types: frozenset[str] | None
                     ) -> AsyncIterator[ServerSentEvent]:
    """Pages after ``after`` as SSE events until the client leaves or the
    stream's time is up."""
    stream, feed = stream_of(request)[0], feed_of(request)
    deadline = time.monotonic() + STREAM_S_MAX
    with slots_of(request).slot(key_of(request), checked=True):
        yield ServerSentEvent(comment="deals-ledger events", retry=RECONNECT_MS)
        wait = poll
        while ((remaining := deadline - time.monotonic()) > 0
               and not await request.is_disconnected()):
            page = await wait(stream, feed, after, PAGE_SIZE_MAX, types,
                              min(STREAM_POLL_S, remaining))
            for event in page.events:
                yield ServerSentEvent(data=event.as_dict(), event=event.type, id=event.id)
            after, wait = page.next_after, (follow if not page.has_more else poll)


JSON_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"description": "refused before any event is sent (the API's error shape)",
             "content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for status in (400, 401, 403, 413, 415, 422, 429, 503)
}
"""A refused stream is answered in JSON, before any event is sent."""


async def stream_start(
    request: Request, after: Annotated[int, Depends(resume_after)], types: Types = None,
) -> tuple[int, frozenset[str] | None]:
    """Checked before the stream's headers go out, so a bad start is an
    error answer, not a broken stream."""
    wanted = parse_types(types)
    stream, _ = stream_of(request)
    slots_of(request).check(key_of(request))
    await in_thread(read_page, stream, after, 1, wanted)
    return after, wanted


@router.get(
    "/stream", response_class=EventSourceResponse, dependencies=[CAN_READ],
    responses=JSON_REFUSALS,
    description="The business events as Server-Sent Events (`text/event-stream`), from "
                "`after` or from the `Last-Event-ID` a reconnecting client sends: each event "
                "is one SSE event whose `event` is its type, `id` its id and `data` the event "
                "as `GET /v1/events` lists it. The stream ends after "
                f"{STREAM_S_MAX:g} s; a client reconnects and resumes where it left off. It needs "
                "the bearer header like every request, so a browser's EventSource (which "
                "cannot send one) does not do: use a fetch-based SSE reader.",
)
async def stream_events(
    request: Request, start: Annotated[tuple[int, frozenset[str] | None], Depends(stream_start)],
) -> AsyncIterator[ServerSentEvent]:
    async for event in sse_events(request, *start):
        yield event
