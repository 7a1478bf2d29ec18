"""The read models' rows, one class per table, as the fold builds them and as
the stores hold them.

Ids are 32-character UUID hex text and times integer microseconds since the
epoch, on SQLite and PostgreSQL alike: one representation, so the projector,
the audit replay and the comparisons between them share all their code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar


@dataclass(slots=True)
class BalanceRow:
    TABLE: ClassVar[str] = "balances"
    KEY: ClassVar[tuple[str, ...]] = ("account_id",)
    account_id: str
    kind: str
    balance: int
    held: int
    frozen: int
    opened_position: int
    opened_at: int
    position: int
    updated_at: int

    @property
    def key(self) -> str:
        return self.account_id


@dataclass(slots=True)
class HistoryRow:
    """One change of one account's posted balance."""

    TABLE: ClassVar[str] = "balance_history"
    KEY: ClassVar[tuple[str, ...]] = ("position",)
    position: int
    account_id: str
    transfer_id: str
    change: int
    balance_before: int
    balance_after: int
    type: str
    reason: str
    created_at: int
    requested_by: str | None = None
    """Who asked for the movement (``domain.provenance``); None before it
    was recorded."""
    request_id: str | None = None

    @property
    def key(self) -> int:
        return self.position


@dataclass(slots=True)
class TransactionRow:
    TABLE: ClassVar[str] = "transactions"
    KEY: ClassVar[tuple[str, ...]] = ("transfer_id",)
    transfer_id: str
    kind: str
    source: str
    destination: str
    amount: int
    reason: str
    phase: str
    settlement: str
    status: str
    reversed_by: str | None
    reverses: str | None
    spender: str | None
    expires_at: int | None
    signature: str | None
    slot: int | None
    created_at: int
    updated_at: int
    position: int
    updated_position: int
    requested_by: str | None = None
    """Who asked for the movement (its recording's ``domain.provenance``)."""
    request_id: str | None = None
    metadata: str | None = None
    """The caller's metadata as JSON text (``application.references``)."""
    external_ref: str | None = None
    reward_type: str | None = None
    """A reward's type: its event's field, or its reason before there was one."""

    @property
    def key(self) -> str:
        return self.transfer_id


@dataclass(slots=True)
class HoldRow:
    TABLE: ClassVar[str] = "holds"
    KEY: ClassVar[tuple[str, ...]] = ("hold_id",)
    hold_id: str
    account_id: str
    amount: int
    expires_at: int
    status: str  # pending | captured | voided | expired
    placed_position: int
    placed_at: int
    closed_position: int | None
    closed_at: int | None

    @property
    def key(self) -> str:
        return self.hold_id


@dataclass(slots=True)
class WalletRow:
    TABLE: ClassVar[str] = "wallets"
    KEY: ClassVar[tuple[str, ...]] = ("wallet_id",)
    wallet_id: str
    address: str
    account_id: str
    status: str  # connected | disconnected
    connected_at: int
    disconnected_at: int | None
    position: int

    @property
    def key(self) -> str:
        return self.wallet_id


@dataclass(slots=True)
class PriceRuleRow:
    TABLE: ClassVar[str] = "price_rules"
    KEY: ClassVar[tuple[str, ...]] = ("position",)
    position: int
    service_type: str
    token_cost: int
    valid_from: int | None
    valid_to: int | None
    set_at: int
    requested_by: str | None = None
    """Who set the rule (``domain.provenance``)."""
    request_id: str | None = None

    @property
    def key(self) -> int:
        return self.position


@dataclass(slots=True)
class PriceRuleDeactivationRow:
    """A price rule withdrawn at ``position`` (``rule_position``: the event
    that set it). Rows are only ever inserted, as the rules are: the rule's
    row stays as it was set, and the listing joins the two."""

    TABLE: ClassVar[str] = "price_rule_deactivations"
    KEY: ClassVar[tuple[str, ...]] = ("position",)
    position: int
    rule_position: int | None
    service_type: str
    deactivated_at: int
    requested_by: str | None = None
    """Who withdrew the rule (``domain.provenance``)."""
    request_id: str | None = None

    @property
    def key(self) -> int:
        return self.position


ROW_TYPES: tuple[type, ...] = (
    BalanceRow, HistoryRow, TransactionRow, HoldRow, WalletRow, PriceRuleRow,
    PriceRuleDeactivationRow,
)


_COLUMNS: dict[type, tuple[str, ...]] = {}


def columns(row_type: type) -> tuple[str, ...]:
    names = _COLUMNS.get(row_type)
    if names is None:
        names = _COLUMNS[row_type] = tuple(f.name for f in fields(row_type))
    return names


_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def values_of(row_type: type) -> Callable[[Any], tuple[Any, ...]]:
    """A row's column values as the tuple the store reads back (the
    ``columns`` order): comparing it with a stored tuple is the rows'
    equality without building a row object per stored row."""
    getter = _GETTERS.get(row_type)
    if getter is None:
        getter = _GETTERS[row_type] = attrgetter(*columns(row_type))
    return getter

