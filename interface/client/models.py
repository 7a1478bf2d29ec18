"""What the client answers: frozen dataclasses read from the service's JSON.

Amounts are ``Decimal``, ids ``UUID``, times aware ``datetime``; a field
the wire names differently (``from``, a Python keyword) says so in its
metadata. ``parse`` reads any of them from an answer by its type hints,
so a model is its field list and nothing more; fields the service adds
later are ignored, so a newer service does not break an older client.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from interface.client.amounts import decimal_of

ModelT = TypeVar("ModelT")
ItemT = TypeVar("ItemT")


WIRE_FROM = {"wire": "from"}
WIRE_TO = {"wire": "to"}


@dataclass(frozen=True)
class Account:
    account_id: UUID
    kind: str
    position: int


@dataclass(frozen=True)
class Balance:
    account_id: UUID
    balance: Decimal
    held: Decimal
    available: Decimal
    position: int


@dataclass(frozen=True)
class Movement:
    """A transfer, mint, burn or transfer_from as recorded (``status``
    ``pending`` until the chain confirms it)."""

    transfer_id: UUID
    kind: str
    status: str
    amount: Decimal
    from_account: UUID = field(metadata=WIRE_FROM)
    to_account: UUID = field(metadata=WIRE_TO)
    from_balance: Decimal
    to_balance: Decimal
    position: int


@dataclass(frozen=True)
class BatchItemResult:
    """One item of ``transfer_batch``, in the order sent: ``status`` ok or
    error, and for an error the refusal as its typed exception (not
    raised: the other items stand)."""

    transfer_id: UUID
    status: str
    error: Any


@dataclass(frozen=True)
class BatchResult:
    results: tuple[BatchItemResult, ...]
    position: int


@dataclass(frozen=True)
class FeeCharge:
    charge_id: UUID
    account_id: UUID
    fee: Decimal
    balance: Decimal
    status: str
    position: int


@dataclass(frozen=True)
class Withdrawal:
    """The account debited; ``status`` pending until the tokens are on the
    wallet's associated token account (``get_transfer`` follows it)."""

    withdrawal_id: UUID
    account_id: UUID
    address: str
    amount: Decimal
    balance: Decimal
    status: str
    position: int


@dataclass(frozen=True)
class Reward:
    reward_id: UUID
    account_id: UUID
    amount: Decimal
    balance: Decimal
    status: str
    position: int


@dataclass(frozen=True)
class Hold:
    hold_id: UUID
    account_id: UUID
    status: str
    amount: Decimal
    service_type: str | None
    expires_at: datetime
    available: Decimal
    position: int


@dataclass(frozen=True)
class HoldCapture:
    hold_id: UUID
    account_id: UUID
    status: str
    amount: Decimal
    balance: Decimal
    position: int


@dataclass(frozen=True)
class HoldRelease:
    hold_id: UUID
    account_id: UUID
    status: str
    amount: Decimal
    position: int


@dataclass(frozen=True)
class Allowance:
    owner: UUID
    spender: UUID
    amount: Decimal
    position: int | None


@dataclass(frozen=True)
class WalletChange:
    account_id: UUID
    address: str
    status: str
    position: int


@dataclass(frozen=True)
class Wallet:
    address: str
    account_id: UUID
    status: str
    connected_at: datetime
    disconnected_at: datetime | None


@dataclass(frozen=True)
class AccountSummary:
    """An account as ``list_accounts`` yields it: ``status`` is active or frozen."""

    account_id: UUID
    kind: str
    status: str
    created_at: datetime
    balance: Decimal
    held: Decimal
    available: Decimal


@dataclass(frozen=True)
class AccountDetails(AccountSummary):
    """One account (``get_account``): its wallets, its token account on
    chain and that account's balance when the last reconciliation read it
    (None before one has)."""

    wallets: tuple[Wallet, ...]
    token_account: str
    deposit_address: str
    """Where a connected wallet deposits DEAL (docs/api.md, Deposits)."""
    chain_balance: Decimal | None
    chain_balance_read_at: datetime | None
    position: int


@dataclass(frozen=True)
class PriceRule:
    """One price rule; ``is_active``: it can still decide a price."""

    token_cost: Decimal
    valid_from: datetime | None
    valid_to: datetime | None
    set_at: datetime
    position: int
    is_active: bool
    deactivated_at: datetime | None = None
    deactivated_by: str | None = None
    requested_by: str | None = None
    """Who set the rule: an API key's name."""
    request_id: str | None = None
    """The X-Request-ID of the request that set it."""
    deactivation_request_id: str | None = None


@dataclass(frozen=True)
class PriceRuleDeactivation:
    """A price rule withdrawn (``rule_position``: where it was set)."""

    service_type: str
    rule_position: int
    is_active: bool
    position: int


@dataclass(frozen=True)
class ServicePricing:
    """A service type's cost now, its default and every rule it was given."""

    service_type: str
    token_cost: Decimal
    default_cost: Decimal
    rules: tuple[PriceRule, ...]
    position: int


@dataclass(frozen=True)
class HistoryEntry:
    transfer_id: UUID
    change: Decimal
    balance_before: Decimal
    balance_after: Decimal
    type: str
    reason: str
    created_at: datetime
    position: int
    requested_by: str | None = None
    """Who asked for the movement: an API key's name or a system actor."""
    request_id: str | None = None
    metadata: dict[str, str] | None = None
    """The movement's metadata as sent with its command (None if none)."""
    external_ref: str | None = None
    """The movement's external_ref as sent with its command (None if none)."""
    reward_type: str | None = None
    """A reward's type (None for other movements)."""


@dataclass(frozen=True)
class Transaction:
    """A movement with its settlement on chain: ``status`` is pending,
    settled, failed or reversed."""

    transfer_id: UUID
    kind: str
    from_account: UUID = field(metadata=WIRE_FROM)
    to_account: UUID = field(metadata=WIRE_TO)
    amount: Decimal
    reason: str
    status: str
    signature: str | None
    slot: int | None
    created_at: datetime
    updated_at: datetime
    position: int
    hold_status: str | None
    expires_at: datetime | None
    reversed_by: UUID | None
    reverses: UUID | None
    as_of_position: int | None
    requested_by: str | None = None
    """Who asked for the movement: an API key's name or a system actor."""
    request_id: str | None = None
    metadata: dict[str, str] | None = None
    """The caller's metadata as sent with the command (None if none)."""
    external_ref: str | None = None
    """The caller's own reference as sent with the command (None if none)."""
    reward_type: str | None = None
    """A reward's type (None for other movements)."""


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One page of a listing (``history_page``, ``transactions_page``):
    ``next_cursor`` asks for the next page (None on the last one), as
    ``has_more`` says; ``position`` is the log position the page reflects."""

    items: tuple[ItemT, ...]
    next_cursor: str | None
    has_more: bool
    position: int


@dataclass(frozen=True)
class Event:
    """A business event (docs/api.md, "Business events"): ``id`` is the same
    on every read; ``data`` is as the service sends it (amounts as decimal
    text, which ``decimal.Decimal`` reads exactly)."""

    id: str
    position: int
    type: str
    occurred_at: datetime
    data: Any


@dataclass(frozen=True)
class EventsPage:
    """One page of events; ``next_after`` is the ``after`` of the next page or poll."""

    items: tuple[Event, ...]
    next_after: int
    has_more: bool
    position: int


@dataclass(frozen=True)
class Webhook:
    """A webhook subscription (admin): events of ``types`` (None: every
    type) are POSTed to ``url``, signed with the Standard Webhooks scheme;
    every event up to ``delivered_position`` was acknowledged. ``secret``
    is the signing secret the client drew when none was given, on the
    answer of the call that created the subscription only (None
    otherwise); never shown by ``repr``."""

    webhook_id: UUID
    url: str
    types: tuple[str, ...] | None
    delivered_position: int
    created_at: datetime
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt: ``outcome`` delivered (2xx) or failed, with the
    receiver's HTTP ``status`` (None: no answer) or the ``error``."""

    event_id: str
    position: int
    type: str
    attempt: int
    outcome: str
    status: int | None
    error: str | None
    at: datetime


@dataclass(frozen=True)
class AuditEvent:
    """One stored event as the log holds it (``audit_events``, admin):
    ``state`` exactly as stored (amounts in base units, times as stored:
    what auditors and proofs need); ``decoded`` beside it, each amount field
    of ``state`` as decimal text of DEAL (``Decimal`` reads it exactly) and
    each time as RFC 3339 text with Z (None from a service that does not
    decode yet; empty for a row that cannot be decoded, see
    ``decode_error``)."""

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: Any
    timestamp: datetime | None
    decode_error: str | None = None
    requested_by: str | None = None
    request_id: str | None = None
    decoded: dict[str, str | None] | None = None


@dataclass(frozen=True)
class ReplayReport:
    """The audit's replay compared with the read models; ``mismatches`` and
    ``anchors`` as the service answers them."""

    events_replayed: int
    accounts: int
    supply_ok: bool
    supply: Decimal
    last_position: int
    mismatches: tuple[Any, ...]
    first_tampered_position: int | None
    position: int
    anchors: Any


@dataclass(frozen=True)
class Reconciliation:
    """One reconciliation run of the chain against the log; findings as the
    service answers them (amounts in them are decimal strings); every
    finding is recorded in the log at or before ``position``."""

    reconciliation_id: UUID
    checked_accounts: int
    checked_signatures: int
    mismatches: tuple[Any, ...]
    unmatched_signatures: tuple[Any, ...]
    mismatch_count: int
    unmatched_signature_count: int
    truncated: bool
    started_at: str
    finished_at: str | None
    position: int


@dataclass(frozen=True)
class Finding:
    """A reconciliation finding; for an unassigned deposit (``deposits``)
    ``actual`` is the amount deposited, ``detail`` names its sender, and
    ``adjusted_by`` the movement that resolved it (None while it is open)."""

    finding_id: UUID
    kind: str
    account_id: UUID | None
    signature: str | None
    transfer_id: UUID | None
    expected: Decimal | None
    actual: Decimal | None
    detail: str
    adjusted_by: UUID | None


@dataclass(frozen=True)
class SystemInfo:
    accounts: Any
    mint: str | None
    decimals: int
    supply: Decimal
    position: int

    @property
    def treasury(self) -> UUID:
        return UUID(self.accounts["treasury"])

    @property
    def rewards(self) -> UUID:
        return UUID(self.accounts["rewards"])


def parse(model: type[ModelT], data: Any) -> ModelT:
    """``model`` read from one JSON object of the service's answer."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object for {model.__name__}, got {type(data).__name__}")
    hints = _hints(model)
    values = {f.name: _convert(hints[f.name], data.get(f.metadata.get("wire", f.name)))
              for f in fields(model)}  # type: ignore[arg-type]
    return model(**values)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(model: type) -> dict[str, Any]:
    if model not in _HINTS:
        _HINTS[model] = get_type_hints(model)
    return _HINTS[model]


_CONVERTERS: dict[Any, Any] = {
    UUID: UUID, Decimal: decimal_of, datetime: datetime.fromisoformat,
    int: int, str: str, bool: bool, Any: lambda value: value,
}


def _convert(hint: Any, value: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):  # X | None
        if value is None:
            return None
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if get_origin(hint) is tuple:
        return tuple(value)
    if get_origin(hint) is dict:
        return dict(value)
    if value is None:
        raise TypeError(f"the service answered null where {hint} is required")
    return _CONVERTERS[hint](value)
