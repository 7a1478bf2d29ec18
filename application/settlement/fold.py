"""Folds the event log into the settlement store (``application.settlement.store``).

It follows the log with the log's page loop (``application.eventlog``) and
applies each page and the new tracking position in one transaction, so each
event is applied once. Only the events with a handler here (Transfer,
Reconciliation and Finding events) are decoded; those listed in
``NOT_SHOWN`` only move the position, and a test names any stored event in
neither.

What a movement is on chain is decided here, once:

- a posted Transfer that settles on chain is a movement from its source to
  its destination (the issuance account standing for the mint's side, so a
  mint, a burn and the reversal of either map to ``mint_to`` / ``burn``);
- a hold is no movement until captured, and then one of the captured amount,
  placed in the queue at the capture's position;
- a compensation (``settles_on_chain`` false) never moves on chain; the one
  of a settled movement (the credit of a deposit whose return failed) takes
  that movement back out of the settled balances, as the ledger gave the
  tokens back to the external account while they stay on chain;
- an adjustment for a reconciliation finding is already true on chain, so it
  counts in the settled balances at once.

The store knows which timeline it was folded from: each page records, with
the new position, an identity of the event there (``event_identity``).
Whenever a fold loads its position (at each start, after a conflict or an
error, and when the settler's chain lookup asks), it checks it against the
log; a store past the log's head, or holding another event's identity at its
position (the log restored without it and written to since), is of a
timeline the log lost and is folded again from the log
(``SettlementFold.tracked_position``), never folded onto.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from application.alerts import AlertKind, raise_alert
from application.eventlog.decoder import EventDecoder
from application.eventlog.fold_table import FoldTable, UnknownEvent
from application.eventlog.page_loop import PageLoop
from application.eventlog.reader import LogEvent
from application.eventlog.seal_check import sealed_pages
from application.eventlog.tracking import TrackingConflict
from application.settlement import metrics
from application.settlement.store import (
    AWAITING_CAPTURE,
    FAILED,
    IN_FLIGHT,
    QUEUED,
    REJECTED,
    SETTLED,
    SUBMITTED,
    SUPERSEDED,
    Cursor,
    SettlementStore,
)
from application.write.event_store import LedgerApplication
from domain.account import Account
from domain.anchor import Anchor
from domain.pricing import PriceSchedule
from domain.reconciliation import Finding, Reconciliation
from domain.transfer import POSTED, Transfer
from domain.wallet import Wallet

logger = logging.getLogger(__name__)

SETTLEMENT_FOLD_PAGE_EVENTS_DEFAULT = 1000
CATCH_UP_PAGES_MAX = 10_000  # a bound per call; the next call goes on

_Handler = Callable[["_Page", Any], None]
_EVENTS: FoldTable[_Handler] = FoldTable("settlement fold")
HANDLED: list[type] = []
"""The event classes this fold applies, in the order they were declared."""


def _on(event_class: type) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        _EVENTS.add(event_class, handler)
        HANDLED.append(event_class)
        return handler

    return register


NOT_SHOWN: frozenset[type] = frozenset({
    # What an account holds on chain follows from the Transfers that move it.
    Account.Opened,
    Account.Debited,
    Account.Credited,
    Account.HoldPlaced,
    Account.HoldReleased,
    Account.HoldCaptured,
    Account.Frozen,
    Account.Unfrozen,
    Account.AllowanceSet,
    Account.AllowanceSpent,
    # Its original is settled again: the reversal's failure is what moved.
    Transfer.ReversalUndone,
    # Connecting or disconnecting a wallet moves no tokens.
    Wallet.Connected,
    Wallet.Disconnected,
    Wallet.Reconnected,
    # Prices are in the amounts the Transfers record.
    PriceSchedule.Started,
    PriceSchedule.RuleSet,
    PriceSchedule.RuleDeactivated,
    # An anchor publishes a digest; it moves no tokens.
    Anchor.Recorded,
    Anchor.Resigned,
    Anchor.Confirmed,
})
"""Stored events the settlement store deliberately leaves out (they only
advance the position)."""
_EVENTS.leave_out(NOT_SHOWN)


def alert_unauthenticated(position: int, why: str) -> None:
    """The settler never settles (so never signs) an event no seal vouches for."""
    raise_alert(AlertKind.UNAUTHENTICATED_EVENT,
                "an event in the log carries no valid commit seal; not settled",
                dedup_key=f"position-{position}", position=position, why=why)


class SettlementFold:
    def __init__(
        self, app: LedgerApplication, store: SettlementStore, *,
        page_events: int = SETTLEMENT_FOLD_PAGE_EVENTS_DEFAULT,
    ) -> None:
        self.app = app
        self.store = store
        self.page_events = page_events
        self.decoder = EventDecoder(app.mapper)
        self._lock = threading.Lock()
        self._pages = PageLoop(app.event_log, self, sealed_pages(
            app.event_log, app.event_log.read, alert_unauthenticated))

    def catch_up(self) -> int:
        """Apply the log up to its current head; returns the store's position."""
        with self._lock:
            for _ in range(CATCH_UP_PAGES_MAX):
                if not self._apply_next_page():
                    break
            return self._pages.position()

    def forget_position(self) -> None:
        """Read the store's position again at the next page (it may have
        gone back: a restore or a failover under a running settler)."""
        with self._lock:
            self._pages.forget()

    def rebuild(self) -> int:
        """Empty the store and fold the whole log again."""
        with self._lock:
            self.store.reset()
            self._pages.forget()
        return self.catch_up()

    def _apply_next_page(self) -> bool:
        """Apply the next page; False when it was the last one for now."""
        try:
            events = self._pages.apply_next(self.page_events)
        except TrackingConflict as conflict:
            logger.info("settlement fold: another process applied the page after %d",
                        conflict.previous)
            return True
        return len(events) == self.page_events

    # The page loop's consumer

    def tracked_position(self) -> int:
        """Where the store stands; a store of a timeline the log lost is
        emptied first, so the fold goes on from 0 (see ``lost_timeline``).

        Rebuilding by itself is safe here, unlike the read models (which
        wait for the operator: a log altered on purpose looks like a
        restore, and their rebuild would drop the hash checkpoints that
        show it): the settlement store proves nothing and is no evidence,
        only what the settler knows of the log, and before it sends anything
        the settler's chain lookup checks the rebuilt store against the chain
        (a landed movement the log lost stops settlement, ``ChainAheadOfLog``,
        so the rebuild can hide nothing that moved). Kept instead, it would
        skip the log's new events at the positions it had folded, never
        credit a deposit its cursors had passed, and vouch for landings the
        log lost."""
        position, why = self.lost_timeline()
        if why is None:
            return position
        logger.warning("%s: folding the settlement store again from the log (the deposit "
                       "scan starts over; credits are idempotent by signature)", why)
        metrics.STORE_REBUILT.inc()
        self.store.reset(lost_timeline=True)
        return 0

    def lost_timeline(self) -> tuple[int, str | None]:
        """The store's position and, when the store is not of the log's
        timeline, why: past the log's head, or another event (or none) at
        its position than the one it folded last there."""
        position, identity = self.store.timeline()
        if position == 0:
            return position, None
        head = self.app.event_log.head()
        if position > head:
            return position, (f"the settlement store is at log position {position}, past the "
                              f"log's head {head}: the log was restored without it")
        if identity is None:
            return position, (f"the settlement store records no identity of the event at its "
                              f"position {position} (folded by an earlier version): it cannot "
                              "be told of the log's timeline")
        found = self.app.event_log.read(position - 1, 1)
        if found and found[0].position == position and event_identity(found[0]) == identity:
            return position, None
        return position, (f"the settlement store was folded from another event at log "
                          f"position {position} than the log holds: the log was restored "
                          "without it and written to since")

    def apply_page(self, previous: int, events: list[LogEvent]) -> None:
        with self.store.transaction(durable=False) as cursor:
            self.store.tracking.advance(cursor, previous, events[-1].position)
            self.store.set_timeline_event(cursor, event_identity(events[-1]))
            page = _Page(self.store, cursor, self.decoder)
            for event in events:
                page.apply(event)


def event_identity(event: LogEvent) -> int:
    """A signed 64-bit digest of a stored event: its position, aggregate id,
    version, topic and stored bytes (the event's timestamp among them), so
    that two timelines of a log do not hold the same one at a position."""
    digest = hashlib.blake2b(digest_size=8, person=b"deals-timeline")
    for part in (str(event.position).encode(), event.originator_id.encode(),
                 str(event.version).encode(), event.topic.encode(), event.state):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return int.from_bytes(digest.digest(), "big", signed=True)


class _Page:
    """One page's transaction: the handlers below run SQL through it."""

    def __init__(self, store: SettlementStore, cursor: Cursor, decoder: EventDecoder) -> None:
        self.store = store
        self.cursor = cursor
        self.decoder = decoder
        self.position = 0

    def apply(self, event: LogEvent) -> None:
        try:
            handler = _EVENTS.for_topic(event.topic)
        except UnknownEvent as unknown:
            raise UnknownEvent(f"position {event.position}: {unknown}") from None
        if handler is None:
            return
        self.position = event.position
        handler(self, self.decoder.domain_event(event))

    def run(self, sql: str, *params: Any) -> None:
        self.cursor.execute(self.store.sql(sql), params)

    def add_to_balance(self, account_hex: str, change: int) -> None:
        """The issuance and external accounts too (no token account: the
        reconciliation checks them against the mint's supply)."""
        self.run(
            "INSERT INTO {settlement_balances} (account_id, balance) VALUES (?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET balance = "
            "{settlement_balances}.balance + excluded.balance",
            account_hex, change,
        )

    def count_step(self) -> None:
        self.store.count_step(self.cursor)

    def set_submission(self, signature: str | None, status: str, slot: int | None = None) -> None:
        if signature is None:
            return
        self.run(
            "UPDATE {settlement_submissions} SET status = ?, slot = ?, outcome_position = ? "
            "WHERE signature = ?", status, slot, self.position, signature,
        )


# Transfers


@_on(Transfer.Recorded)
def _recorded(page: _Page, event: Any) -> None:
    source, destination = event.source.hex, event.destination.hex
    if getattr(event, "adjusts", None) is not None:
        page.add_to_balance(source, -event.amount)
        page.add_to_balance(destination, event.amount)
        return
    if not event.settles_on_chain:
        if event.reverses is not None:
            _unsettle(page, event.reverses.hex)
        return
    page.add_to_balance(source, 0)  # every account a movement touches gets checked
    page.add_to_balance(destination, 0)
    status = QUEUED if event.phase == POSTED else AWAITING_CAPTURE
    page.run(
        "INSERT INTO {settlement_movements} (transfer_id, position, source, destination, amount, "
        "status, alone) VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (transfer_id) DO NOTHING",
        event.originator_id.hex, page.position, source, destination, event.amount, status,
    )
    address = getattr(event, "address", None)
    if address is not None:  # a withdrawal: its wallet is its destination on chain
        page.run(
            "INSERT INTO {settlement_withdrawals} (transfer_id, address) VALUES (?, ?) "
            "ON CONFLICT (transfer_id) DO NOTHING", event.originator_id.hex, address,
        )
        _wallet_withdrawn_to(page, event, source, address)


def _wallet_withdrawn_to(page: _Page, event: Any, source: str, address: str) -> None:
    """A deposit return is marked as one, with the token account it pays
    into (none for one recorded before returns named it); any other
    withdrawal's wallet joins its account's wallets at its first position:
    the fee payer creates token accounts for the first few only
    (``wallet_accounts``)."""
    if getattr(event, "returns_finding", None) is not None:
        page.run("INSERT INTO {settlement_deposit_returns} (transfer_id) VALUES (?) "
                 "ON CONFLICT (transfer_id) DO NOTHING", event.originator_id.hex)
        token_account = getattr(event, "token_account", None)
        if token_account is not None:
            page.run("INSERT INTO {settlement_return_accounts} (transfer_id, token_account) "
                     "VALUES (?, ?) ON CONFLICT (transfer_id) DO NOTHING",
                     event.originator_id.hex, token_account)
        return
    page.run(
        "INSERT INTO {settlement_account_wallets} (account_id, address, position) "
        "VALUES (?, ?, ?) ON CONFLICT (account_id, address) DO NOTHING",
        source, address, page.position,
    )


def _unsettle(page: _Page, transfer_hex: str) -> None:
    """A compensation of a movement that had settled: its changes leave the
    settled balances (the compensation of a failed one finds no settled row)."""
    _add_settled_changes(page, transfer_hex, taken_out=True)
    _unname_deposit(page, transfer_hex)


def _unname_deposit(page: _Page, transfer_hex: str) -> None:
    """A deposit's credit taken out (a refused return reopened its finding)
    leaves its transaction's row too, where several deposits of one
    transaction are named: the reconciliation expects of the transaction
    only the credits still standing, so the deposit's next credit (a new id)
    does not count twice, and a transaction left with none is unknown again,
    as before it was credited. Statements only; a settlement the settler
    sent has a block height, never touched here."""
    page.run(
        "DELETE FROM {settlement_submissions} WHERE transfer_ids = ? AND signature = "
        "(SELECT signature FROM {settlement_movements} WHERE transfer_id = ? AND status = ?) "
        "AND last_valid_block_height = 0", transfer_hex, transfer_hex, SETTLED,
    )
    page.run(
        "UPDATE {settlement_submissions} SET transfer_ids = "
        "REPLACE(REPLACE(transfer_ids, ?, ''), ?, '') WHERE signature = "
        "(SELECT signature FROM {settlement_movements} WHERE transfer_id = ? AND status = ?) "
        "AND last_valid_block_height = 0",
        f",{transfer_hex}", f"{transfer_hex},", transfer_hex, SETTLED,
    )


def _add_settled_changes(page: _Page, transfer_hex: str, *, taken_out: bool = False) -> None:
    """Add a movement's changes to the settled balances of its accounts, or
    (``taken_out``) take a settled movement's back out.
    Statements only, no read: on PostgreSQL a page's statements go out
    pipelined, and a read would wait for the round trip (a movement the
    store does not know changes no balance)."""
    signs = ("amount", "-amount") if taken_out else ("-amount", "amount")
    only = " AND status = ?" if taken_out else ""
    for account, change in zip(("source", "destination"), signs, strict=True):
        page.run(
            "INSERT INTO {settlement_balances} (account_id, balance) "  # noqa: S608 - fixed words
            f"SELECT {account}, {change} FROM {{settlement_movements}} "
            f"WHERE transfer_id = ?{only} "
            "ON CONFLICT (account_id) DO UPDATE SET balance = "
            "{settlement_balances}.balance + excluded.balance",
            transfer_hex, *((SETTLED,) if taken_out else ()),
        )


@_on(Transfer.Captured)
def _captured(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {settlement_movements} SET status = ?, amount = ?, position = ? "
        "WHERE transfer_id = ? AND status = ?",
        QUEUED, event.amount, page.position, event.originator_id.hex, AWAITING_CAPTURE,
    )


def _released(page: _Page, event: Any) -> None:
    page.run(
        "DELETE FROM {settlement_movements} WHERE transfer_id = ? AND status = ?",
        event.originator_id.hex, AWAITING_CAPTURE,
    )


_on(Transfer.Voided)(_released)
_on(Transfer.Expired)(_released)


@_on(Transfer.SettlementSubmitted)
def _submitted(page: _Page, event: Any) -> None:
    page.count_step()
    transfer_hex = event.originator_id.hex
    page.run(  # the submission it replaces (another, still submitted) is superseded
        "UPDATE {settlement_submissions} SET status = ?, slot = NULL, outcome_position = ? "
        "WHERE signature = (SELECT signature FROM {settlement_movements} "
        "WHERE transfer_id = ? AND status = ? AND signature <> ?)",
        SUPERSEDED, page.position, transfer_hex, SUBMITTED, event.signature,
    )
    page.run(
        "UPDATE {settlement_movements} SET status = ?, signature = ? WHERE transfer_id = ?",
        SUBMITTED, event.signature, transfer_hex,
    )
    transaction = getattr(event, "transaction", None)
    page.run(
        "INSERT INTO {settlement_submissions} (signature, position, last_valid_block_height, tx, "
        "transfer_ids, status) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (signature) DO UPDATE SET "
        "transfer_ids = {settlement_submissions}.transfer_ids || ',' || excluded.transfer_ids",
        event.signature, page.position, event.last_valid_block_height,
        None if transaction is None else _decode(transaction), transfer_hex, IN_FLIGHT,
    )


@_on(Transfer.SettlementRejected)
def _rejected(page: _Page, event: Any) -> None:
    page.count_step()
    page.run(
        "UPDATE {settlement_movements} SET status = ?, alone = 1, signature = NULL "
        "WHERE transfer_id = ?", QUEUED, event.originator_id.hex,
    )
    page.set_submission(event.signature, REJECTED)


@_on(Transfer.Settled)
def _settled(page: _Page, event: Any) -> None:
    """Statements only, no read (``_add_settled_changes``)."""
    page.count_step()
    transfer_hex = event.originator_id.hex
    _add_settled_changes(page, transfer_hex)
    page.run(
        "UPDATE {settlement_movements} SET status = ?, signature = ?, slot = ?, "
        "outcome_position = ? WHERE transfer_id = ?",
        SETTLED, event.signature, event.slot, page.position, transfer_hex,
    )
    page.set_submission(event.signature, SETTLED, event.slot)
    page.run(  # a settlement without a submission (the genesis mint, a deposit): several
        # deposits of one transaction (one per transfer) all name its signature
        "INSERT INTO {settlement_submissions} (signature, position, last_valid_block_height, "
        "transfer_ids, status, slot, outcome_position) VALUES (?, ?, 0, ?, ?, ?, ?) "
        "ON CONFLICT (signature) DO UPDATE SET transfer_ids = "
        "{settlement_submissions}.transfer_ids || ',' || excluded.transfer_ids "
        "WHERE {settlement_submissions}.last_valid_block_height = 0 AND "
        "{settlement_submissions}.transfer_ids NOT LIKE ?",
        event.signature, page.position, transfer_hex, SETTLED, event.slot, page.position,
        f"%{transfer_hex}%",
    )


@_on(Transfer.SettlementFailed)
def _failed(page: _Page, event: Any) -> None:
    page.count_step()
    page.run(
        "UPDATE {settlement_movements} SET status = ?, outcome_position = ? WHERE transfer_id = ?",
        FAILED, page.position, event.originator_id.hex,
    )
    page.set_submission(event.signature, FAILED)


@_on(Transfer.Reversed)
def _reversed(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {settlement_movements} SET compensation = 'reversed' "
        "WHERE transfer_id = ? AND status = ?", event.originator_id.hex, FAILED,
    )


@_on(Transfer.CompensationBlocked)
def _blocked(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {settlement_movements} SET compensation = 'blocked', compensation_error = ? "
        "WHERE transfer_id = ?", event.error, event.originator_id.hex,
    )


# Reconciliation


@_on(Reconciliation.Started)
def _run_started(page: _Page, event: Any) -> None:
    page.run(
        "INSERT INTO {reconciliation_runs} (run_id, position, started_at) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id) DO NOTHING",
        event.originator_id.hex, page.position, event.timestamp.isoformat(),
    )


@_on(Reconciliation.Finished)
def _run_finished(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {reconciliation_runs} SET finished_at = ?, finished_position = ?, "
        "checked_accounts = ?, checked_signatures = ?, mismatches = ?, "
        "unmatched_signatures = ?, findings_total = ? WHERE run_id = ?",
        event.timestamp.isoformat(), page.position, event.checked_accounts,
        event.checked_signatures, event.mismatches, event.unmatched_signatures,
        event.findings_total, event.originator_id.hex,
    )


@_on(Finding.Recorded)
def _finding(page: _Page, event: Any) -> None:
    page.run(
        "INSERT INTO {reconciliation_findings} (finding_id, run_id, position, kind, account_id, "
        "signature, transfer_id, expected, actual, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (finding_id) DO NOTHING",
        event.originator_id.hex, event.reconciliation_id.hex, page.position, event.kind,
        _hex(event.account_id), event.signature, _hex(event.transfer_id), event.expected,
        event.actual, event.detail,
    )


@_on(Finding.Adjusted)
def _adjusted(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {reconciliation_findings} SET adjusted_by = ? WHERE finding_id = ?",
        event.transfer_id.hex, event.originator_id.hex,
    )


@_on(Finding.Reopened)
def _reopened(page: _Page, event: Any) -> None:
    page.run(
        "UPDATE {reconciliation_findings} SET adjusted_by = NULL WHERE finding_id = ?",
        event.originator_id.hex,
    )


def _hex(value: Any) -> str | None:
    return None if value is None else value.hex


def _decode(transaction: str) -> bytes:
    import base64

    return base64.b64decode(transaction)
