"""Business events: what subscribers are told happened, derived from the log.

The stored log is already durable and totally ordered, so a business event
is not stored a second time: it is a mapping from one stored domain event
(at its position) to a public type and a payload. Reading the stream after
a position, now or after a restart, gives the same events with the same ids
(``evt_<position>``), which is what lets a subscriber drop a redelivery.

Each stored event class is declared once: mapped to a public type, or left
out (``NOT_PUBLISHED``; a test names any class in neither), through the log's
``FoldTable``, so an event class renamed behind a topic alias keeps its
public type. The payload speaks the API's words: amounts as exact decimal
strings, ids as UUID text, times with ``Z``; fields a stored event may carry
since later versions (``external_ref``, ``metadata``, ``reward_type``) are
passed on when present. A movement's later events (settled, failed, reversed,
a hold's capture, void or expiry) also carry what its recording said (kind,
from, to, amount, the caller's references), read from that first event, so
a subscriber that follows only ``transfer.settled`` can still match it to
its own order by ``external_ref``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.eventlog.decoder import EventDecoder
from application.eventlog.fold_table import FoldTable
from application.eventlog.reader import LogEvent
from domain.account import Account
from domain.amounts import format_amount
from domain.anchor import Anchor
from domain.movements import FEE, REWARD, WITHDRAWAL
from domain.pricing import PriceSchedule
from domain.reconciliation import Finding, Reconciliation
from domain.transfer import PENDING, Transfer
from domain.wallet import Wallet

Fields = dict[str, Any]
Payload = tuple[str, Fields]
Mapping = Callable[[LogEvent, Fields], Payload]
RecordedOf = Callable[[str], Fields | None]
"""A movement's recording fields by its id (UUID hex); None when not found."""
RECORDINGS_KEPT_MAX = 4096
"""Movements whose recording is kept for their later events (bounded)."""

EVENT_TYPES = (
    "transfer.recorded", "transfer.settled", "transfer.failed", "transfer.reversed",
    "hold.placed", "hold.captured", "hold.voided", "hold.expired",
    "fee.charged", "reward.paid", "withdrawal.requested", "wallet.connected",
    "wallet.disconnected", "reconciliation.finding",
)
"""Every public type, in the order the docs list them."""
PASSED_ON = ("external_ref", "metadata", "reward_type", "address")
"""Optional fields of a stored movement passed on as they are, when present."""


@dataclass(frozen=True)
class BusinessEvent:
    """One public event: ``id`` is stable across redeliveries and restarts."""

    id: str
    position: int
    type: str
    occurred_at: str
    data: Fields

    def as_dict(self) -> Fields:
        return {"id": self.id, "position": self.position, "type": self.type,
                "occurred_at": self.occurred_at, "data": self.data}


def event_id(position: int) -> str:
    """The public id of the business event at ``position`` (one at most per
    stored event, so the position alone names it)."""
    return f"evt_{position}"


def _uuid_text(hex_id: str | None) -> str | None:
    return None if hex_id is None else str(UUID(hex=hex_id))


def _zulu(iso: str) -> str:
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _recorded(event: LogEvent, fields: Fields) -> Payload:
    data = {
        "transfer_id": _uuid_text(event.originator_id), "kind": fields["kind"],
        "amount": format_amount(fields["amount"]),
        "from": _uuid_text(fields["source"]), "to": _uuid_text(fields["destination"]),
        "reason": fields["reason"],
    }
    if fields.get("reverses"):
        data["reverses"] = _uuid_text(fields["reverses"])
    data.update({name: fields[name] for name in PASSED_ON if fields.get(name) is not None})
    if fields["phase"] == PENDING:
        data["expires_at"] = fields["expires_at"] and _zulu(fields["expires_at"])
        return "hold.placed", data
    by_kind = {FEE: "fee.charged", REWARD: "reward.paid", WITHDRAWAL: "withdrawal.requested"}
    return by_kind.get(fields["kind"], "transfer.recorded"), data


def _movement(fields: Fields) -> Fields:
    """What a movement's recording said, for its later events."""
    data = {"kind": fields["kind"], "amount": format_amount(fields["amount"]),
            "from": _uuid_text(fields["source"]), "to": _uuid_text(fields["destination"])}
    data.update({name: fields[name] for name in PASSED_ON if fields.get(name) is not None})
    return data


LATER: frozenset[type] = frozenset({
    Transfer.Settled, Transfer.SettlementFailed, Transfer.Reversed, Transfer.Captured,
    Transfer.Voided, Transfer.Expired,
})
"""A movement's events after its recording: they carry the recording's fields."""


def _transfer(public_type: str, *names: str) -> Mapping:
    """A movement's later event: its id and the named fields."""
    def mapping(event: LogEvent, fields: Fields) -> Payload:
        data = {"transfer_id": _uuid_text(event.originator_id)}
        for name in names:
            value = fields[name]
            if name == "amount":
                value = format_amount(value)
            elif name == "reversal_id":
                value = _uuid_text(value)
            data[name] = value
        return public_type, data
    return mapping


def _wallet(public_type: str) -> Mapping:
    def mapping(event: LogEvent, fields: Fields) -> Payload:
        return public_type, {"wallet_id": _uuid_text(event.originator_id),
                             "account_id": _uuid_text(fields["account_id"])}
    return mapping


def _connected(event: LogEvent, fields: Fields) -> Payload:
    public_type, data = _wallet("wallet.connected")(event, fields)
    return public_type, {**data, "address": fields["address"]}


def _finding(event: LogEvent, fields: Fields) -> Payload:
    def units(name: str) -> str | None:
        return None if fields[name] is None else format_amount(fields[name])

    return "reconciliation.finding", {
        "finding_id": _uuid_text(event.originator_id),
        "reconciliation_id": _uuid_text(fields["reconciliation_id"]),
        "kind": fields["kind"], "account_id": _uuid_text(fields["account_id"]),
        "transfer_id": _uuid_text(fields["transfer_id"]), "signature": fields["signature"],
        "expected": units("expected"), "actual": units("actual"), "detail": fields["detail"],
    }


MAPPINGS: dict[type, Mapping] = {
    Transfer.Recorded: _recorded,
    Transfer.Settled: _transfer("transfer.settled", "signature", "slot"),
    Transfer.SettlementFailed: _transfer("transfer.failed", "signature", "error"),
    Transfer.Reversed: _transfer("transfer.reversed", "reversal_id"),
    Transfer.Captured: _transfer("hold.captured", "amount"),
    Transfer.Voided: _transfer("hold.voided"),
    Transfer.Expired: _transfer("hold.expired"),
    Wallet.Connected: _connected,
    Wallet.Reconnected: _wallet("wallet.connected"),
    Wallet.Disconnected: _wallet("wallet.disconnected"),
    Finding.Recorded: _finding,
}

NOT_PUBLISHED: frozenset[type] = frozenset({
    # Balances move with the movement a subscriber is told of.
    Account.Opened, Account.Debited, Account.Credited, Account.HoldPlaced,
    Account.HoldReleased, Account.HoldCaptured,
    # Administrative and internal steps, not what the platform's services follow.
    Account.Frozen, Account.Unfrozen, Account.AllowanceSet, Account.AllowanceSpent,
    Transfer.SettlementSubmitted, Transfer.SettlementRejected, Transfer.CompensationBlocked,
    # A failed reversal's compensation (its own transfer.reversed) says it.
    Transfer.ReversalUndone,
    Reconciliation.Started, Reconciliation.Finished, Finding.Adjusted, Finding.Reopened,
    Anchor.Recorded, Anchor.Resigned, Anchor.Confirmed,
    PriceSchedule.Started, PriceSchedule.RuleSet, PriceSchedule.RuleDeactivated,
})
"""Stored events that are no business event of their own."""

_TABLE: FoldTable[Mapping] = FoldTable("business events")
for _event_class, _mapping in MAPPINGS.items():
    _TABLE.add(_event_class, _mapping)
_TABLE.leave_out(NOT_PUBLISHED)
_LATER_MAPPINGS = frozenset(MAPPINGS[event_class] for event_class in LATER)


class BusinessEvents:
    """Stored events to business events (``None``: none of its own)."""

    def __init__(self, decoder: EventDecoder, recorded_of: RecordedOf | None = None) -> None:
        self._decoder = decoder
        self._recorded_of = recorded_of
        self._recordings: OrderedDict[str, Fields] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, event: LogEvent) -> BusinessEvent | None:
        mapping = _TABLE.for_topic(event.topic)
        if mapping is None:
            return None
        fields = self._decoder.fields(event.state, event.topic)
        public_type, data = mapping(event, fields)
        if mapping in _LATER_MAPPINGS:
            data = {**self._recording(event.originator_id), **data}
        return BusinessEvent(event_id(event.position), event.position, public_type,
                             _zulu(fields["timestamp"]), data)

    def _recording(self, transfer_hex: str) -> Fields:
        """The movement's recording fields (empty when unknown), kept a while:
        a settlement follows its recording soon after."""
        with self._lock:
            kept = self._recordings.get(transfer_hex)
            if kept is not None:
                self._recordings.move_to_end(transfer_hex)
                return kept
        recorded = None if self._recorded_of is None else self._recorded_of(transfer_hex)
        if recorded is None or not {"kind", "amount", "source", "destination"} <= recorded.keys():
            return {}
        data = _movement(recorded)
        with self._lock:
            self._recordings[transfer_hex] = data
            while len(self._recordings) > RECORDINGS_KEPT_MAX:
                self._recordings.popitem(last=False)
        return data
