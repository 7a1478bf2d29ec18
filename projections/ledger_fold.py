"""The projection logic: how each event changes the read models' rows.

One fold serves both the live projector, which gives it the rows a page of
events touches (loaded from the read-model store), and the audit replay,
which gives it every row in memory. So a replay checks the read models
against the very rules that built them, applied afresh to the log.

Invariants are checked as rows change (STYLE rule 5: checked where stored
as well as where decided): the balance after each posting must equal the
one the account recorded in its event, held amounts never go negative, and
no account but issuance and external ever has a negative available balance
(external goes below zero only when DEAL the ledger never let out is
deposited: ``domain.account.Account.check_can_send``). A broken
invariant is collected in ``PageChanges.violations``; the projector refuses
to commit such a page, the audit replay reports it.

Each event class is declared once, with its handler and the existing rows a
page holding it must load (``_on(event, loads=...)``); ``keys_for`` derives
a page's rows from those declarations. Events no read model shows are
listed in ``NOT_SHOWN``, and a test names any stored event in neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from application.eventlog.decoder import EventDecoder
from application.eventlog.fold_table import FoldTable, UnknownEvent
from application.eventlog.reader import LogEvent
from domain import provenance
from domain.account import MAY_GO_NEGATIVE, Account
from domain.anchor import Anchor
from domain.movements import REWARD
from domain.pricing import PriceSchedule
from domain.reconciliation import Finding, Reconciliation
from domain.transfer import (
    CAPTURED,
    EXPIRED,
    PENDING,
    SETTLED,
    SETTLEMENT_FAILED,
    SETTLEMENT_QUEUED,
    SETTLEMENT_SUBMITTED,
    VOIDED,
    Transfer,
    client_status,
    first_settlement_status,
    settlement_when_hold_closes,
)
from domain.wallet import Wallet
from projections.rows import (
    BalanceRow,
    HistoryRow,
    HoldRow,
    PriceRuleDeactivationRow,
    PriceRuleRow,
    TransactionRow,
    WalletRow,
)
from projections.times import micros


class InvariantViolation(Exception):
    """The log and the read model disagree with a ledger rule: a projection
    must stop rather than build on it."""


@dataclass
class FoldState:
    """The rows the fold may read and change, by key. Rows not here are
    taken not to exist (the projector loads every row a page needs)."""

    balances: dict[str, BalanceRow] = field(default_factory=dict)
    transactions: dict[str, TransactionRow] = field(default_factory=dict)
    holds: dict[str, HoldRow] = field(default_factory=dict)
    wallets: dict[str, WalletRow] = field(default_factory=dict)


@dataclass
class PageChanges:
    """What one page of events changed: rows to upsert, rows to insert."""

    balances: dict[str, BalanceRow] = field(default_factory=dict)
    transactions: dict[str, TransactionRow] = field(default_factory=dict)
    holds: dict[str, HoldRow] = field(default_factory=dict)
    wallets: dict[str, WalletRow] = field(default_factory=dict)
    history: list[HistoryRow] = field(default_factory=list)
    price_rules: list[PriceRuleRow] = field(default_factory=list)
    price_rule_deactivations: list[PriceRuleDeactivationRow] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    events: int = 0
    last_position: int = 0
    last_time: int | None = None


@dataclass(frozen=True)
class Keys:
    """The existing rows a page of events needs."""

    accounts: set[str]
    transfers: set[str]
    holds: set[str]
    wallets: set[str]


Fields = dict[str, Any]
_Handler = Callable[["LedgerFold", LogEvent, dict[str, Any], PageChanges], None]
_EVENTS: FoldTable[tuple[_Handler, tuple[str, ...]]] = FoldTable("read-model fold")
HANDLED: list[type] = []
"""The event classes this fold shows, in the order they were declared."""

ACCOUNT_ROWS, TRANSFER_ROWS, HOLD_ROWS, WALLET_ROWS = "accounts", "transfers", "holds", "wallets"
_ROW_KINDS = frozenset(f.name for f in fields(Keys))


def _on(
    event_class: type, *, loads: tuple[str, ...] | None = None, creates: bool = False
) -> Callable[[_Handler], _Handler]:
    """Declare the handler of ``event_class`` and the existing rows, keyed
    by the event's originator id, that a page holding it must load first;
    an event that makes its own row says ``creates=True`` instead. One of
    the two is required: a handler that silently loads nothing finds no row
    once its row sits in an earlier page, and halts the projector there."""
    if (loads is None) == (not creates):
        raise ValueError(f"{event_class.__qualname__}: declare loads=(...) or creates=True")
    loads = loads or ()
    if not _ROW_KINDS.issuperset(loads):
        raise ValueError(f"{event_class.__qualname__} loads unknown rows {loads}")

    def register(handler: _Handler) -> _Handler:
        _EVENTS.add(event_class, (handler, loads))
        HANDLED.append(event_class)
        return handler

    return register


def keys_for(events: Iterable[LogEvent]) -> Keys:
    """The existing rows a page needs: for each event, the rows its
    declaration names."""
    keys = Keys(set(), set(), set(), set())
    for event in events:
        entry = _entry(event)
        for kind in entry[1] if entry is not None else ():
            getattr(keys, kind).add(event.originator_id)
    return keys


def _entry(event: LogEvent) -> tuple[_Handler, tuple[str, ...]] | None:
    """The handler and rows of a stored event; None for one left out or one
    no class answers to (``apply`` reports the latter at its position)."""
    try:
        return _EVENTS.for_topic(event.topic)
    except UnknownEvent:
        return None


class LedgerFold:
    def __init__(self, state: FoldState, decoder: EventDecoder) -> None:
        self.state = state
        self.decoder = decoder

    def apply(self, events: Iterable[LogEvent]) -> PageChanges:
        changes = PageChanges()
        for event in events:
            changes.events += 1
            changes.last_position = event.position
            try:
                entry = _EVENTS.for_topic(event.topic)
            except UnknownEvent as unknown:  # never skipped: the projector stops on it
                changes.violations.append(f"position {event.position}: {unknown}")
                continue
            if entry is None:
                continue  # an event no read model shows (NOT_SHOWN)
            try:
                fields = self.decoder.fields(event.state, event.topic)
                changes.last_time = micros(fields["timestamp"])
                entry[0](self, event, fields, changes)
            except Exception as error:  # a damaged row: a finding at its position
                changes.violations.append(undecodable(event, error))
        return changes

    # Helpers shared by the handlers.

    def _account(self, event: LogEvent, changes: PageChanges) -> BalanceRow | None:
        row = self.state.balances.get(event.originator_id)
        if row is None:
            _unknown(changes, event, "account")
            return None
        row.position = event.position
        changes.balances[row.account_id] = row
        return row

    def _post(
        self, event: LogEvent, fields: dict[str, Any], changes: PageChanges, change: int
    ) -> None:
        row = self._account(event, changes)
        if row is None:
            return
        before = row.balance
        row.balance = before + change
        row.updated_at = changes.last_time or row.updated_at
        if row.balance != fields["balance_after"]:
            changes.violations.append(
                f"position {event.position}: account {row.account_id} balance after is "
                f"{row.balance} in the read model but {fields['balance_after']} in the event"
            )
        self._check_available(event, row, changes)
        changes.history.append(HistoryRow(
            event.position, row.account_id, fields["transfer_id"], change, before, row.balance,
            fields["kind"], fields["reason"], row.updated_at, *provenance.of(fields),
        ))

    def _change_held(self, event: LogEvent, changes: PageChanges, change: int) -> None:
        row = self._account(event, changes)
        if row is None:
            return
        row.held += change
        row.updated_at = changes.last_time or row.updated_at
        if row.held < 0:
            changes.violations.append(
                f"position {event.position}: account {row.account_id} holds a negative amount"
            )
        self._check_available(event, row, changes)

    @staticmethod
    def _check_available(event: LogEvent, row: BalanceRow, changes: PageChanges) -> None:
        if row.kind not in MAY_GO_NEGATIVE and row.balance - row.held < 0:
            changes.violations.append(
                f"position {event.position}: account {row.account_id} available balance "
                f"{row.balance - row.held} is negative"
            )

    def _transaction(self, event: LogEvent, changes: PageChanges) -> TransactionRow | None:
        row = self.state.transactions.get(event.originator_id)
        if row is None:
            _unknown(changes, event, "transfer")
            return None
        row.updated_position = event.position
        row.updated_at = changes.last_time or row.updated_at
        changes.transactions[row.transfer_id] = row
        return row

    def _close_hold(
        self, event: LogEvent, changes: PageChanges, transaction: TransactionRow, status: str
    ) -> None:
        transaction.phase = status
        transaction.settlement = settlement_when_hold_closes(status, transaction.settlement)
        transaction.status = client_status(reversed_=transaction.reversed_by is not None, phase=status,
                                           settlement=transaction.settlement)
        hold = self.state.holds.get(event.originator_id)
        if hold is None or hold.status != PENDING:
            changes.violations.append(
                f"position {event.position}: hold {event.originator_id} is not pending"
            )
            return
        hold.status = status
        hold.closed_position = event.position
        hold.closed_at = changes.last_time
        changes.holds[hold.hold_id] = hold

    def _wallet(self, event: LogEvent, changes: PageChanges) -> WalletRow | None:
        row = self.state.wallets.get(event.originator_id)
        if row is None:
            _unknown(changes, event, "wallet")
            return None
        row.position = event.position
        changes.wallets[row.wallet_id] = row
        return row


def violation_position(violation: str) -> int | None:
    """The position a violation names (each starts "position N: ...")."""
    head = violation.split(":", 1)[0]
    number = head.removeprefix("position ")
    return int(number) if number.isdigit() else None


def undecodable(event: LogEvent, error: Exception) -> str:
    """The finding for a stored row the fold cannot read (bad JSON, a field
    missing or of the wrong type); never its content, which may be anything."""
    return (f"position {event.position}: undecodable event {event.topic} of "
            f"{event.originator_id} ({type(error).__name__})")


def _unknown(changes: PageChanges, event: LogEvent, what: str) -> None:
    changes.violations.append(
        f"position {event.position}: {event.topic} for unknown {what} {event.originator_id}"
    )


# Accounts


@_on(Account.Opened, creates=True)
def _opened(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    if event.originator_id in fold.state.balances:
        changes.violations.append(f"position {event.position}: account opened twice")
        return
    at = changes.last_time or 0
    row = BalanceRow(
        event.originator_id, fields["kind"], 0, 0, 0, event.position, at, event.position, at
    )
    fold.state.balances[row.account_id] = row
    changes.balances[row.account_id] = row


@_on(Account.Debited, loads=(ACCOUNT_ROWS,))
def _debited(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    fold._post(event, fields, changes, -fields["amount"])


@_on(Account.Credited, loads=(ACCOUNT_ROWS,))
def _credited(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    fold._post(event, fields, changes, fields["amount"])


@_on(Account.HoldPlaced, loads=(ACCOUNT_ROWS,))
def _hold_placed(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    fold._change_held(event, changes, fields["amount"])


@_on(Account.HoldReleased, loads=(ACCOUNT_ROWS,))
def _hold_released(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    fold._change_held(event, changes, -fields["amount"])


@_on(Account.HoldCaptured, loads=(ACCOUNT_ROWS,))
def _hold_captured(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    fold._change_held(event, changes, -(fields["amount"] + fields["released"]))
    fold._post(event, fields, changes, -fields["amount"])


@_on(Account.Frozen, loads=(ACCOUNT_ROWS,))
def _frozen(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = fold._account(event, changes)
    if row is not None:
        row.frozen = 1


@_on(Account.Unfrozen, loads=(ACCOUNT_ROWS,))
def _unfrozen(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = fold._account(event, changes)
    if row is not None:
        row.frozen = 0


# Transfers and holds


def references(fields: Fields) -> tuple[str | None, str | None, str | None]:
    """A movement's metadata (JSON text), external_ref and reward_type; an
    earlier reward's type is its reason, as it was shown before."""
    metadata = fields.get("metadata")
    reward_type = fields.get("reward_type")
    if reward_type is None and fields["kind"] == REWARD:
        reward_type = fields["reason"]
    return (None if metadata is None else json.dumps(metadata, sort_keys=True),
            fields.get("external_ref"), reward_type)


@_on(Transfer.Recorded, creates=True)
def _recorded(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    at = changes.last_time or 0
    settlement = first_settlement_status(fields["settles_on_chain"], fields["phase"])
    expires_at = micros(fields["expires_at"])
    row = TransactionRow(
        event.originator_id, fields["kind"], fields["source"], fields["destination"],
        fields["amount"], fields["reason"], fields["phase"], settlement,
        client_status(reversed_=False, phase=fields["phase"], settlement=settlement), None,
        fields["reverses"],
        fields["spender"], expires_at, None, None, at, at, event.position, event.position,
        *provenance.of(fields), *references(fields),
    )
    if event.originator_id in fold.state.transactions:
        changes.violations.append(f"position {event.position}: transfer recorded twice")
        return
    fold.state.transactions[row.transfer_id] = row
    changes.transactions[row.transfer_id] = row
    if fields["phase"] == PENDING:
        if expires_at is None:
            changes.violations.append(f"position {event.position}: hold without an expiry")
            return
        hold = HoldRow(
            row.transfer_id, row.source, row.amount, expires_at, PENDING, event.position, at,
            None, None,
        )
        fold.state.holds[hold.hold_id] = hold
        changes.holds[hold.hold_id] = hold


@_on(Transfer.Captured, loads=(TRANSFER_ROWS, HOLD_ROWS))
def _captured(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = fold._transaction(event, changes)
    if row is not None:
        row.amount = fields["amount"]
        fold._close_hold(event, changes, row, CAPTURED)


def _closing_hold(status: str) -> _Handler:
    """A void and an expiry fold alike, but for the status they close with."""

    def closed(fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges) -> None:
        row = fold._transaction(event, changes)
        if row is not None:
            fold._close_hold(event, changes, row, status)

    return closed


_on(Transfer.Voided, loads=(TRANSFER_ROWS, HOLD_ROWS))(_closing_hold(VOIDED))
_on(Transfer.Expired, loads=(TRANSFER_ROWS, HOLD_ROWS))(_closing_hold(EXPIRED))


@_on(Transfer.Reversed, loads=(TRANSFER_ROWS,))
def _reversed(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    _set_reversed_by(fold, event, changes, fields["reversal_id"])


@_on(Transfer.ReversalUndone, loads=(TRANSFER_ROWS,))
def _reversal_undone(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    """Its reversal failed on chain and was compensated: it stands again."""
    _set_reversed_by(fold, event, changes, None)


def _set_reversed_by(
    fold: LedgerFold, event: LogEvent, changes: PageChanges, reversal_id: str | None
) -> None:
    row = fold._transaction(event, changes)
    if row is not None:
        row.reversed_by = reversal_id
        row.status = client_status(reversed_=reversal_id is not None, phase=row.phase,
                                   settlement=row.settlement)


def _settlement(
    fold: LedgerFold, event: LogEvent, changes: PageChanges, settlement: str,
    signature: str | None, slot: int | None = None,
) -> TransactionRow | None:
    row = fold._transaction(event, changes)
    if row is None:
        return None
    row.settlement = settlement
    if signature is not None:
        row.signature = signature
    if slot is not None:
        row.slot = slot
    row.status = client_status(reversed_=row.reversed_by is not None, phase=row.phase,
                               settlement=settlement)
    return row


@_on(Transfer.SettlementSubmitted, loads=(TRANSFER_ROWS,))
def _submitted(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    _settlement(fold, event, changes, SETTLEMENT_SUBMITTED, fields["signature"])


@_on(Transfer.SettlementRejected, loads=(TRANSFER_ROWS,))
def _rejected(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    """Refused as a whole, never landed: queued again, to be signed alone."""
    row = _settlement(fold, event, changes, SETTLEMENT_QUEUED, None)
    if row is not None:
        row.signature = None


@_on(Transfer.Settled, loads=(TRANSFER_ROWS,))
def _settled(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    _settlement(fold, event, changes, SETTLED, fields["signature"], fields["slot"])


@_on(Transfer.SettlementFailed, loads=(TRANSFER_ROWS,))
def _failed(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    _settlement(fold, event, changes, SETTLEMENT_FAILED, fields.get("signature"))


# Wallets


@_on(Wallet.Connected, creates=True)
def _connected(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = WalletRow(
        event.originator_id, fields["address"], fields["account_id"], "connected",
        changes.last_time or 0, None, event.position,
    )
    fold.state.wallets[row.wallet_id] = row
    changes.wallets[row.wallet_id] = row


@_on(Wallet.Disconnected, loads=(WALLET_ROWS,))
def _disconnected(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = fold._wallet(event, changes)
    if row is not None:
        row.status = "disconnected"
        row.disconnected_at = changes.last_time


@_on(Wallet.Reconnected, loads=(WALLET_ROWS,))
def _reconnected(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    row = fold._wallet(event, changes)
    if row is not None:
        row.account_id = fields["account_id"]
        row.status = "connected"
        row.connected_at = changes.last_time or row.connected_at
        row.disconnected_at = None


# Pricing


@_on(PriceSchedule.RuleSet, creates=True)
def _rule_set(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    changes.price_rules.append(PriceRuleRow(
        event.position, fields["service_type"], fields["token_cost"],
        micros(fields["valid_from"]), micros(fields["valid_to"]), changes.last_time or 0,
        *provenance.of(fields),
    ))


@_on(PriceSchedule.RuleDeactivated, creates=True)
def _rule_deactivated(
    fold: LedgerFold, event: LogEvent, fields: Fields, changes: PageChanges
) -> None:
    changes.price_rule_deactivations.append(PriceRuleDeactivationRow(
        event.position, fields.get("rule_position"), fields["service_type"],
        changes.last_time or 0, *provenance.of(fields),
    ))


# Not shown

NOT_SHOWN: frozenset[type] = frozenset({
    # Allowances are read from the owner's account on the write side
    # (strongly consistent); no read model keeps them.
    Account.AllowanceSet,
    Account.AllowanceSpent,
    # The settlement store and the reconciliation report show these.
    Transfer.CompensationBlocked,
    Reconciliation.Started,
    Reconciliation.Finished,
    Finding.Recorded,
    Finding.Adjusted,
    Finding.Reopened,
    # Anchors: the audit and the proofs read them from the log and the chain.
    Anchor.Recorded,
    Anchor.Resigned,
    Anchor.Confirmed,
    # An empty schedule: its rules arrive as RuleSet events.
    PriceSchedule.Started,
})
"""Stored events this fold deliberately leaves out (they only advance the
position)."""
_EVENTS.leave_out(NOT_SHOWN)
