"""What a command answers. ``position`` is the log position of the
command's last event (or, for a replayed command, of the event that holds
its first outcome), so a client can read its own writes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.errors import LedgerError


@dataclass(frozen=True)
class Outcome:
    position: int | None = field(default=None, kw_only=True)
    replayed: bool = field(default=False, kw_only=True)

    def at(self, position: int | None) -> Any:
        return replace(self, position=position)


@dataclass(frozen=True)
class AccountOpened(Outcome):
    account_id: UUID
    kind: str


@dataclass(frozen=True)
class AccountStatusChanged(Outcome):
    account_id: UUID
    frozen: bool


@dataclass(frozen=True)
class MovementRecorded(Outcome):
    """A transfer, fee, reward, mint, burn, reversal or hold capture."""

    transfer_id: UUID
    kind: str
    status: str
    amount: int
    source: UUID
    destination: UUID
    source_balance: int
    destination_balance: int


@dataclass(frozen=True)
class BatchItemResult:
    transfer_id: UUID
    error: LedgerError | None = None
    outcome: MovementRecorded | None = None


@dataclass(frozen=True)
class BatchRecorded(Outcome):
    atomic: bool
    applied: bool
    results: tuple[BatchItemResult, ...]


@dataclass(frozen=True)
class HoldPlaced(Outcome):
    hold_id: UUID
    account_id: UUID
    amount: int
    service_type: str | None
    expires_at: datetime
    available: int


@dataclass(frozen=True)
class HoldReleased(Outcome):
    hold_id: UUID
    account_id: UUID
    amount: int
    cause: str


@dataclass(frozen=True)
class AllowanceSet(Outcome):
    owner: UUID
    spender: UUID
    amount: int


@dataclass(frozen=True)
class WalletChanged(Outcome):
    account_id: UUID
    address: str
    connected: bool


@dataclass(frozen=True)
class PriceRuleSet(Outcome):
    service_type: str
    token_cost: int
    valid_from: datetime | None
    valid_to: datetime | None


@dataclass(frozen=True)
class GenesisDone(Outcome):
    treasury_id: UUID
    rewards_id: UUID
    issuance_id: UUID
    supply: int


@dataclass(frozen=True)
class SettlementStep(Outcome):
    """A settlement step recorded: ``status`` is what the transfers now are
    (submitted, settled, queued again after a rejection, or failed).
    ``compensations`` are the reversals posted for failed movements;
    ``blocked`` the failed movements whose reversal the ledger refused."""

    signature: str
    transfer_ids: tuple[UUID, ...]
    status: str
    compensations: tuple[UUID, ...] = ()
    blocked: tuple[tuple[UUID, str], ...] = ()


@dataclass(frozen=True)
class AnchorStep(Outcome):
    """An anchor step recorded: ``status`` is ``recorded`` (in flight) or
    ``confirmed``."""

    sequence: int
    signature: str
    status: str


@dataclass(frozen=True)
class ReconciliationStep(Outcome):
    reconciliation_id: UUID
    findings_recorded: int = 0
