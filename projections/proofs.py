"""Proofs an auditor checks without trusting the service (docs/proofs.md).

An event proof holds the event's canonical bytes, its RFC 6962 inclusion
path up to the root of the first confirmed anchor that covers it, and that
anchor (memo, signature, slot, the anchor signer's address): with the chain
alone, anyone can confirm the event is in the log as anchored. A
consistency proof links two anchored roots: the later log extends the
earlier one, nothing of it rewritten.

The tree is caught up from the stored log on each question (the first one
reads the whole log) and kept in bounded memory (``ChunkedLogTree``: two
hashes per 256 events, a few chunks of leaves read back from the log);
anchors are read from the same events, so what is proved is what is stored.
A chunk read back that no longer hashes as it did is refused as
``store_damaged`` (503), never proved.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from application.eventlog.decoder import EventDecoder
from application.eventlog.merkle_log import CHUNK_BITS, ChunkedLogTree, LogChanged, canonical_bytes
from application.eventlog.reader import EventLog, LogEvent
from domain.anchor import Anchor
from domain.errors import LedgerError, TransferNotFound
from domain.merkle import leaf_hash

PROOF_FORMAT = "deals-ledger-proof/v1"
CONSISTENCY_FORMAT = "deals-ledger-consistency/v1"
_RECORDED = "Anchor.Recorded"
_TRANSFER_RECORDED = ":Transfer.Recorded"


class NotAnchored(LedgerError):
    """The event (or anchor) asked for is not covered by a confirmed anchor yet."""

    code = "not_anchored"


class LogChangedUnderProof(LedgerError):
    """The stored log no longer hashes as it did when this process read it
    (rows changed behind the service's back): 503, as a damaged store is,
    and never a proof of what the log no longer holds."""

    code = "store_damaged"

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


class EventNotFound(LedgerError):
    """No stored event has the position asked for."""

    code = "event_not_found"


@dataclass
class AnchorView:
    sequence: int
    position: int
    tree_size: int
    root: str
    previous_root: str
    memo: str
    signature: str
    slot: int | None
    signer: str | None


class LogProofs:
    def __init__(self, log: EventLog, decoder: EventDecoder, anchor_signer: str | None,
                 *, chunk_bits: int = CHUNK_BITS) -> None:
        self._log = log
        self._decoder = decoder
        self._anchor_signer = anchor_signer
        self._tree = ChunkedLogTree(log, chunk_bits=chunk_bits)
        self._anchors: dict[str, AnchorView] = {}  # by aggregate id (hex)
        self._anchor_events_seen = 0
        self._lock = threading.Lock()

    # --- questions -------------------------------------------------------------------

    def digest(self) -> dict[str, Any] | None:
        """The latest confirmed anchor; None before the first."""
        with self._lock:
            self._catch_up()
            confirmed = self._confirmed()
            return asdict(confirmed[-1]) if confirmed else None

    def event_proof(self, position: int) -> dict[str, Any]:
        with self._lock, _changed_as_damaged():
            self._catch_up()
            index = self._tree.index_of(position)
            if index is None:
                raise EventNotFound(f"no stored event has position {position}")
            anchor = self._covering(position)
            event = self._event_at(position)
            if leaf_hash(canonical_bytes(event)) != self._tree.tree.leaf(index):
                raise LogChanged(position)
            path = self._tree.tree.inclusion_proof(index, anchor.tree_size)
            return {
                "format": PROOF_FORMAT,
                "ledger_id": self._tree.tree.leaf(0).hex(),
                "event": _event_view(event, index),
                "inclusion": {"leaf_index": index, "tree_size": anchor.tree_size,
                              "path": [node.hex() for node in path]},
                "anchor": asdict(anchor),
            }

    def transfer_proof(self, transfer_id: UUID) -> dict[str, Any]:
        """The proof of the event that recorded the movement (its version 1)."""
        position = self._log.position_of(transfer_id, 1)
        recorded = [] if position is None else self._log.read(position - 1, 1, position)
        if not recorded or not recorded[0].topic.endswith(_TRANSFER_RECORDED):
            raise TransferNotFound(f"transfer {transfer_id} does not exist")
        return self.event_proof(recorded[0].position)

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """Anchors ``first`` and ``second`` (sequence numbers, first <= second)."""
        with self._lock, _changed_as_damaged():
            self._catch_up()
            by_sequence = {anchor.sequence: anchor for anchor in self._confirmed()}
            for sequence in (first, second):
                if sequence not in by_sequence:
                    raise NotAnchored(f"anchor {sequence} is not confirmed")
            older, newer = by_sequence[first], by_sequence[second]
            proof = self._tree.tree.consistency_proof(older.tree_size, newer.tree_size)
            return {"format": CONSISTENCY_FORMAT, "from": asdict(older), "to": asdict(newer),
                    "path": [node.hex() for node in proof]}

    # --- the tree and the anchors ---------------------------------------------------

    def _catch_up(self) -> None:
        self._tree.catch_up()
        events = self._tree.anchor_events
        for event in events[self._anchor_events_seen:]:
            self._apply_anchor_event(event)
        self._anchor_events_seen = len(events)

    def _apply_anchor_event(self, event: LogEvent) -> None:
        fields = self._decoder.fields(event.state)
        if event.topic.endswith(_RECORDED):
            self._anchors[event.originator_id] = AnchorView(
                sequence=fields["sequence"], position=fields["position"],
                tree_size=fields["tree_size"], root=fields["root"],
                previous_root=fields["previous_root"], memo=fields["memo"],
                signature=fields["signature"], slot=None, signer=self._anchor_signer,
            )
            return
        anchor = self._anchors.get(event.originator_id)
        if anchor is None:
            return
        anchor.signature = fields["signature"]
        if event.topic.endswith(Anchor.Confirmed.__qualname__):
            anchor.slot = fields["slot"]

    def _confirmed(self) -> list[AnchorView]:
        confirmed = [anchor for anchor in self._anchors.values() if anchor.slot is not None]
        return sorted(confirmed, key=lambda anchor: anchor.sequence)

    def _covering(self, position: int) -> AnchorView:
        for anchor in self._confirmed():
            if anchor.position >= position:
                return anchor
        raise NotAnchored(
            f"position {position} is not covered by a confirmed anchor yet; it will be by the "
            "next one (DEALS_ANCHOR_EVERY_EVENTS / DEALS_ANCHOR_EVERY_S)"
        )

    def _event_at(self, position: int) -> LogEvent:
        (event,) = self._log.read(position - 1, 1, position)
        return event


@contextmanager
def _changed_as_damaged() -> Iterator[None]:
    try:
        yield
    except LogChanged as changed:
        raise LogChangedUnderProof(str(changed), changed.position) from None


def _event_view(event: LogEvent, index: int) -> dict[str, Any]:
    return {
        "position": event.position, "leaf_index": index,
        "canonical_bytes": base64.b64encode(canonical_bytes(event)).decode(),
        "topic": event.topic, "originator_id": str(UUID(event.originator_id)),
        "version": event.version, "state": event.state.decode("utf-8", errors="replace"),
    }
