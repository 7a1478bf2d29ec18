"""The query parameters of an account's history and transactions: order,
time range, movement kind and reward type (``projections.listing_filters``
applies them)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query

from application.commands import REASON_LENGTH_MAX
from domain.rfc3339 import EXAMPLE, TIME_TEXT_LENGTH_MAX, parse_time
from projections.listing_filters import ListingFilter, Order
from projections.queries import PAGE_SIZE_MAX

Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")]
MovementKind = Annotated[
    Literal["transfer", "fee", "reward", "mint", "burn", "reversal", "withdrawal", "deposit"] | None,
    Query(description="only movements of this kind"),
]
TimeText = Annotated[str | None, Query(
    max_length=TIME_TEXT_LENGTH_MAX, examples=[EXAMPLE],
    description="an RFC 3339 time with an offset",
)]


class ListingOptions:
    """``order``, ``since``, ``until`` and ``reward_type`` as one dependency."""

    def __init__(
        self,
        order: Annotated[Order, Query(
            description="asc: oldest first (the default); desc: newest first. A cursor "
                        "continues in the order that issued it")] = Order.ASC,
        since: Annotated[TimeText, Query(
            description="only rows created at or after this RFC 3339 time")] = None,
        until: Annotated[TimeText, Query(
            description="only rows created at or before this RFC 3339 time")] = None,
        reward_type: Annotated[str | None, Query(
            min_length=1, max_length=REASON_LENGTH_MAX,  # a reward type is its reason
            description="only rewards of this reward_type")] = None,
    ) -> None:
        self.order = order
        self.reward_type = reward_type
        self.since = None if since is None else parse_time(since, "since")
        self.until = None if until is None else parse_time(until, "until")

    def filter(self, kind: str | None) -> ListingFilter:
        return ListingFilter(self.order, self.since, self.until, kind, self.reward_type)


Listing = Annotated[ListingOptions, Depends()]
