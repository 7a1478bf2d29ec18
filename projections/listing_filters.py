"""How an account's history and transactions are listed: in which order,
over which time range, of which movement kinds.

Pages are keyset pages on the log position in either direction (``position
> cursor ORDER BY position`` oldest first, ``position < cursor ORDER BY
position DESC`` newest first), on the same ``(account, position)`` indexes,
so a wallet screen's newest-first page costs what the oldest-first one
does. A cursor names its direction (``history`` or ``history-desc``), so a
cursor of one order is refused by the other instead of paging from a
meaningless place; it binds the filters too (``ListingFilter.filters``), so
a cursor of other filters is refused as well. The time range, kind and
reward type filters narrow the rows; the keyset stays on the position, so a
page never skips or repeats a row whatever the filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.errors import InvalidRequest
from projections.cursors import decode_cursor, encode_cursor, filters_text
from projections.times import to_micros

_POSITION_MAX = 2**63 - 1


class Order(StrEnum):
    """``order=`` of a listing: ``asc`` oldest first (the default), ``desc``
    newest first."""

    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class ListingFilter:
    """One listing request's order and filters; ``since`` and ``until`` are
    both inclusive (``until`` means at or before, as the audit's does)."""

    order: Order = Order.ASC
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    reward_type: str | None = None
    """Only rewards of this type (``reward_type`` of their movement)."""

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidRequest("since must not be later than until")

    def listing(self, base: str) -> str:
        """The cursor's listing name: the base for ascending pages, with
        ``-desc`` for descending ones."""
        return base if self.order is Order.ASC else f"{base}-desc"

    def start(self, base: str, cursor: str | None, account_id: UUID) -> int:
        """The keyset bound of the page: after it (asc) or before it (desc)."""
        position = decode_cursor(cursor, self.listing(base), account_id, self.filters)
        if cursor is None and self.order is Order.DESC:
            return _POSITION_MAX
        return position

    def next_cursor(self, base: str, account_id: UUID, items: list[Any], more: bool
                    ) -> str | None:
        if not more:
            return None
        return encode_cursor(self.listing(base), account_id, items[-1].position, self.filters)

    @property
    def filters(self) -> str:
        """The filters as a cursor binds them: the same text for the same
        range, kind and reward type however the request spelt the times;
        empty for none."""
        return filters_text({"since": _text(self.since), "until": _text(self.until),
                             "kind": self.kind, "reward_type": self.reward_type})

    def where(self, kind_column: str, prefix: str = "",
              reward_type_column: str = "reward_type") -> tuple[str, list[Any]]:
        """The keyset comparison and the filters as SQL (column names are
        the read models', never input) and their parameters, after the
        keyset bound's own. ``prefix`` qualifies the listed table's columns;
        ``reward_type_column`` is named whole, as it may be a joined table's."""
        clauses = [f"{prefix}position {'>' if self.order is Order.ASC else '<'} ?"]
        params: list[Any] = []
        if self.since is not None:
            clauses.append(f"{prefix}created_at >= ?")
            params.append(to_micros(self.since))
        if self.until is not None:
            clauses.append(f"{prefix}created_at <= ?")
            params.append(to_micros(self.until))
        if self.kind is not None:
            clauses.append(f"{prefix}{kind_column} = ?")
            params.append(self.kind)
        if self.reward_type is not None:
            clauses.append(f"{reward_type_column} = ?")
            params.append(self.reward_type)
        return " AND ".join(clauses), params

    @property
    def sort(self) -> str:
        return self.sort_by()

    def sort_by(self, prefix: str = "") -> str:
        """The keyset order on ``prefix``'s position column."""
        return f"{prefix}position" if self.order is Order.ASC else f"{prefix}position DESC"


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


ASCENDING = ListingFilter()
"""Every row, oldest first: what a listing without order or filters is."""
