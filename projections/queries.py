"""The read side's contract with the HTTP API and the CLI.

Views are plain values with int amounts; the interface formats them.

Consistency: by default (``Consistency.STRONG``) a query first reads the
log's head and answers from read models that have applied at least that
far, so it reflects every command acknowledged before it arrived, by any
process. ``Consistency.EVENTUAL`` skips that (what the read models have
now). ``min_position`` combines with either: the answer includes that
position too. A wait is bounded (``MIN_POSITION_WAIT_S``; then
``ReadModelBehind``, 503), and a position past the log's head is refused
at once (``PositionPastHead``, 422). ``ReadPoint`` is what a query must
include, worked out once per request (``ReadModelQueries.plan``) so the
HTTP API can await it without holding a thread.

Positions name whole commits: a position given to a query is rounded down
to the last commit that ends at or before it
(``application.eventlog.commits``), and every answer carries the position
it reflects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from domain.errors import LedgerError
from projections.listing_filters import ListingFilter

T = TypeVar("T")
PAGE_SIZE_MAX = 1000
PAGE_SIZE_DEFAULT = 100
MIN_POSITION_WAIT_S = 5.0


class ReadModelBehind(LedgerError):
    """The read model did not reach the requested position in time (503
    ``unavailable`` with Retry-After: nothing is wrong, retry)."""

    code = "unavailable"


class PositionPastHead(LedgerError):
    """A request named a log position the log has not reached: no state
    exists there yet, and waiting for it could hold the request forever."""

    code = "position_past_head"

    def __init__(self, name: str, position: int, head: int) -> None:
        super().__init__(
            f"{name} {position} is past the log's head, {head}: no state exists there yet"
        )
        self.head = head


class Consistency(StrEnum):
    """How fresh a query's answer must be (``consistency=`` in the API)."""

    STRONG = "strong"
    """Reflect every command acknowledged before the query arrived (the default)."""
    EVENTUAL = "eventual"
    """Answer from the read models as they are: faster, possibly behind."""


@dataclass(frozen=True)
class ReadPoint:
    """What one query must reflect: ``target``, the position the read models
    must have applied; ``head``, the log's head when it arrived (None when
    it was not read: an eventual read); ``cut``, a position the caller
    named (``at``, ``until_position``, ``after_position``) rounded down to a
    whole commit."""

    target: int
    head: int | None = None
    cut: int | None = None


@dataclass(frozen=True)
class BalanceView:
    account_id: UUID
    balance: int
    held: int
    available: int
    position: int


@dataclass(frozen=True)
class AccountView:
    """One account as the read models know it: what it is, its balance
    summary (holds past their expiry no longer count as held) and, for the
    single-account query, its wallets."""

    account_id: UUID
    kind: str
    status: str  # active | frozen
    created_at: datetime
    opened_position: int
    balance: int
    held: int
    available: int
    wallets: list[WalletView] = field(default_factory=list)


@dataclass(frozen=True)
class AccountFilter:
    """What ``GET /v1/accounts`` lists: None admits every kind or status."""

    kind: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One change of one account's balance (or of its held amount)."""

    transfer_id: UUID
    change: int
    balance_before: int
    balance_after: int
    type: str  # the movement kind: transfer, fee, reward, mint, burn, reversal; or hold, release
    reason: str
    created_at: datetime
    position: int
    requested_by: str | None = None
    """Who asked for the movement (``domain.provenance``)."""
    request_id: str | None = None
    metadata: dict[str, str] | None = None
    """The movement's caller references (``application.references``)."""
    external_ref: str | None = None
    reward_type: str | None = None


@dataclass(frozen=True)
class TransactionView:
    transfer_id: UUID
    kind: str
    source: UUID
    destination: UUID
    amount: int
    reason: str
    status: str  # pending | settled | failed | reversed
    created_at: datetime
    updated_at: datetime
    position: int
    signature: str | None = None
    slot: int | None = None
    hold_status: str | None = None  # pending | captured | voided | expired, for holds
    expires_at: datetime | None = None
    reversed_by: UUID | None = None
    reverses: UUID | None = None
    as_of_position: int | None = None
    """For a transfer read on its own: the log position whose state it reflects."""
    requested_by: str | None = None
    """Who asked for the movement (``domain.provenance``)."""
    request_id: str | None = None
    metadata: dict[str, str] | None = None
    """The caller's own references (``application.references``)."""
    external_ref: str | None = None
    reward_type: str | None = None


@dataclass(frozen=True)
class WalletView:
    address: str
    account_id: UUID
    status: str  # connected | disconnected
    connected_at: datetime
    disconnected_at: datetime | None = None


@dataclass(frozen=True)
class PriceRuleView:
    token_cost: int
    valid_from: datetime | None
    valid_to: datetime | None
    set_at: datetime
    requested_by: str | None = None
    """Who set the rule (``domain.provenance``)."""
    request_id: str | None = None
    position: int = 0
    """The log position that set it."""
    is_active: bool = True
    """It can still decide a price (``domain.pricing.active_rules``), and
    was not deactivated."""
    deactivated_at: datetime | None = None
    deactivated_by: str | None = None
    """Who deactivated it (``domain.provenance``); None while active."""
    deactivation_request_id: str | None = None


@dataclass(frozen=True)
class ServicePriceView:
    service_type: str
    token_cost_now: int
    default_cost: int
    rules: list[PriceRuleView] = field(default_factory=list)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    position: int = 0
    """The log position whose state the page reflects."""

    @property
    def has_more(self) -> bool:
        """Another page follows (``next_cursor`` asks for it)."""
        return self.next_cursor is not None


@dataclass(frozen=True)
class Listing(Generic[T]):
    """An unpaged answer and the log position whose state it reflects."""

    items: list[T]
    position: int


@dataclass(frozen=True)
class EventsPage:
    """Raw events after ``after_position`` (the asked one rounded down to a
    whole commit), whole commits only, read at the log's head ``position``."""

    items: list[RawEvent]
    after_position: int
    position: int
    next_after_position: int | None


@dataclass(frozen=True)
class Mismatch:
    """One disagreement found by an audit replay."""

    model: str  # e.g. "balances", "balance_history", "transactions", "redis_cache", "event_log"
    key: str
    expected: str
    actual: str


@dataclass(frozen=True)
class ReplayReport:
    events_replayed: int
    accounts: int
    supply_ok: bool
    supply: int
    last_position: int
    mismatches: list[Mismatch]
    first_tampered_position: int | None = None
    position: int = 0
    """The whole-commit cut the replay reflects (``until_position`` rounded
    down to the last commit that ends at or before it)."""


@dataclass(frozen=True)
class RawEvent:
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: dict
    timestamp: datetime | None
    decode_error: str | None = None
    """Set when the stored row cannot be decoded (``state`` is then empty):
    reported at its position, never a failed listing."""
    requested_by: str | None = None
    """Who asked for the command that wrote it (``domain.provenance``);
    None for an event written before that was recorded."""
    request_id: str | None = None
    decoded: dict[str, str | None] = field(default_factory=dict)
    """Beside ``state``, never in place of it: its amounts as decimal DEAL
    and its times with ``Z`` (``projections.decoded_fields``)."""


class LedgerQueries(Protocol):
    """What the interface asks of the read side. Every query takes a
    ``point`` (from ``plan``, awaited with ``reach``) or, without one, plans
    and waits itself (blocking: for the CLI and tests)."""

    def plan(
        self, consistency: Consistency = Consistency.STRONG, min_position: int | None = None,
        at_position: int | None = None, at_name: str = "at",
    ) -> ReadPoint: ...

    async def reach(self, point: ReadPoint, timeout_s: float | None = None) -> None: ...

    def position_at(self, moment: datetime) -> int: ...

    def balance(
        self, account_id: UUID, *, at_position: int | None = None, at_time: datetime | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None,
    ) -> BalanceView: ...

    def history(
        self, account_id: UUID, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None, listing: ListingFilter = ...,
    ) -> Page[HistoryEntry]: ...

    def transactions(
        self, account_id: UUID, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        min_position: int | None = None, consistency: Consistency = Consistency.STRONG,
        point: ReadPoint | None = None, listing: ListingFilter = ...,
    ) -> Page[TransactionView]: ...

    def account(self, account_id: UUID, *, point: ReadPoint | None = None) -> Listing[AccountView]:
        """One account (a one-item listing: the item and its position)."""
        ...

    def accounts(
        self, accounts: AccountFilter, *, limit: int = PAGE_SIZE_DEFAULT,
        cursor: str | None = None, point: ReadPoint | None = None,
    ) -> Page[AccountView]: ...

    def transfer(
        self, transfer_id: UUID, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> TransactionView: ...

    def transfers_by_external_ref(
        self, external_ref: str, *, limit: int = PAGE_SIZE_DEFAULT, cursor: str | None = None,
        point: ReadPoint | None = None, listing: ListingFilter = ...,
    ) -> Page[TransactionView]: ...

    def wallets(
        self, account_id: UUID, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> Listing[WalletView]: ...

    def pricing(
        self, now: datetime, *, min_position: int | None = None,
        consistency: Consistency = Consistency.STRONG, point: ReadPoint | None = None,
    ) -> Listing[ServicePriceView]: ...

    def service_pricing(
        self, service_type: str, now: datetime, *, point: ReadPoint | None = None,
    ) -> Listing[ServicePriceView]:
        """One service type's price now and every rule it was given."""
        ...

    def audit_events(
        self, *, aggregate_id: UUID | None = None, after_position: int = 0,
        limit: int = PAGE_SIZE_DEFAULT, point: ReadPoint | None = None,
    ) -> EventsPage: ...

    def audit_replay(
        self, *, until_position: int | None = None, until: datetime | None = None,
        point: ReadPoint | None = None,
    ) -> ReplayReport: ...

    def position(self) -> int:
        """How far the read models have applied the log."""
        ...
