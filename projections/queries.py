"""The read side's contract with the HTTP API and the CLI.

Views are plain values with int amounts; the interface formats them. Every
query that takes ``min_position`` first waits (bounded, up to 5 s) until the
read model has applied the log up to that position, so a client reads its
own writes; past the bound it raises ``ReadModelBehind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from domain.errors import LedgerError

T = TypeVar("T")
PAGE_SIZE_MAX = 1000
DEFAULT_PAGE_SIZE = 100
MIN_POSITION_WAIT_S = 5.0


class ReadModelBehind(LedgerError):
    """The read model did not reach the requested position in time."""

    code = "unavailable"


@dataclass(frozen=True)
class BalanceView:
    account_id: UUID
    balance: int
    held: int
    available: int
    position: int


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


@dataclass(frozen=True)
class RawEvent:
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: dict
    timestamp: datetime


class LedgerQueries(Protocol):
    """What the interface asks of the read side."""

    def balance(
        self, account_id: UUID, *, at_position: int | None = None, at_time: datetime | None = None,
        min_position: int | None = None,
    ) -> BalanceView: ...

    def history(
        self, account_id: UUID, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None,
    ) -> Page[HistoryEntry]: ...

    def transactions(
        self, account_id: UUID, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None,
    ) -> Page[TransactionView]: ...

    def transfer(self, transfer_id: UUID, *, min_position: int | None = None) -> TransactionView: ...

    def wallets(self, account_id: UUID, *, min_position: int | None = None) -> list[WalletView]: ...

    def pricing(self, now: datetime) -> list[ServicePriceView]: ...

    def audit_events(
        self, *, aggregate_id: UUID | None = None, after_position: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> list[RawEvent]: ...

    def audit_replay(
        self, *, until_position: int | None = None, until: datetime | None = None
    ) -> ReplayReport: ...

    def position(self) -> int:
        """How far the read models have applied the log."""
        ...
