"""What a command answers. ``position`` is where the commit that holds the
command's events ends (a group commit holds many commands; a state at a
position means whole commits), so a client reads its own writes with
``min_position`` or ``at``.

A repeated command answers exactly its first answer: the handler builds it
again from what the first execution committed (the aggregate's state as of
the event named by ``answered_by``) and the processor gives it that event's
position, read from the store. Nothing is kept besides the events, so the
answer survives a crash between commit and response, and any process
answers it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.errors import LedgerError

EventRef = tuple[UUID, int]
"""One stored event: its aggregate's id and version."""


@dataclass(frozen=True)
class Outcome:
    position: int | None = field(default=None, kw_only=True)
    replayed: bool = field(default=False, kw_only=True)
    answered_by: tuple[EventRef, ...] = field(default=(), kw_only=True, compare=False,
                                              repr=False)
    """The events the answer stands for; its ``position`` is the end of the
    commit holding the latest of them, the first time and on every repeat.
    Empty: the commit of its own events, or the log's head when it wrote
    nothing (internal commands)."""

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
class PriceRuleDeactivated(Outcome):
    service_type: str
    rule_position: int


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
