"""Anchors: the log's Merkle root published on Solana, recorded write-ahead.

An anchor says "the log's first ``tree_size`` events, up to ``position`` (a
whole-commit boundary), have Merkle root ``root``" in a memo signed by the
custody authority, where the operator cannot rewrite it afterwards. Each
names the previous anchor's root, so anchors form a chain (and any two are
linked by a consistency proof).

Anchor ``n`` is an aggregate of its own whose id is derived from ``n``, so
two anchorers racing for the same number meet the event store's version
check and only one records it. Like a settlement submission, the signed
transaction is recorded before it is sent (``Recorded``); one that expired
unseen is signed again (``Resigned``, naming the one it supersedes); the one
that landed is ``Confirmed`` with its slot. Nothing here reads a clock or
the chain: the process manager passes times and signatures in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import SettlementConflict
from domain.ids import ledger_id

_ANCHOR_NAMESPACE = UUID("3f1c1c55-7a3e-5b84-9d0b-2c6f8e4a9b10")
MEMO_PREFIX = "deals-anchor"
MEMO_VERSION = "v1"
NO_PREVIOUS_ROOT = "0" * 64
"""What the first anchor names as its previous root."""


def anchor_id(sequence: int) -> UUID:
    """A ledger id (``domain.ids``): sequences are predictable, so a plain
    uuid5 could be taken first by a client and stop anchoring for good."""
    return ledger_id(_ANCHOR_NAMESPACE, f"anchor:{sequence}")


@dataclass(frozen=True)
class AnchorMemo:
    """What an anchor's memo says; its text is a stored contract (docs/proofs.md)."""

    ledger_id: str  # hex of the leaf hash of the log's first event
    sequence: int
    position: int
    tree_size: int
    root: str  # hex
    previous_root: str  # hex; NO_PREVIOUS_ROOT for the first

    def text(self) -> str:
        return ":".join((
            MEMO_PREFIX, MEMO_VERSION, self.ledger_id, str(self.sequence), str(self.position),
            str(self.tree_size), self.root, self.previous_root,
        ))


def parse_anchor_memo(text: str) -> AnchorMemo | None:
    """The anchor a memo states; None for any other memo (or a malformed one)."""
    parts = text.split(":")
    if len(parts) != 8 or parts[0] != MEMO_PREFIX or parts[1] != MEMO_VERSION:
        return None
    ledger_id, sequence, position, size, root, previous = parts[2:]
    if not all(map(_is_hex64, (ledger_id, root, previous))):
        return None
    if not all(part.isdigit() and part.isascii() for part in (sequence, position, size)):
        return None
    return AnchorMemo(ledger_id, int(sequence), int(position), int(size), root, previous)


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(char in "0123456789abcdef" for char in text)


class Anchor(Aggregate):
    class Recorded(Aggregate.Created):
        sequence: int
        position: int
        tree_size: int
        root: str
        previous_root: str
        memo: str
        signature: str
        last_valid_block_height: int
        transaction: str  # base64 of the signed bytes

    class Resigned(Aggregate.Event):
        supersedes: str
        signature: str
        last_valid_block_height: int
        transaction: str

        def apply(self, anchor: Anchor) -> None:
            anchor.signature = self.signature
            anchor.last_valid_block_height = self.last_valid_block_height
            anchor.transaction = self.transaction

    class Confirmed(Aggregate.Event):
        signature: str
        slot: int

        def apply(self, anchor: Anchor) -> None:
            anchor.slot = self.slot

    def __init__(
        self, sequence: int, position: int, tree_size: int, root: str, previous_root: str,
        memo: str, signature: str, last_valid_block_height: int, transaction: str,
    ) -> None:
        self.sequence = sequence
        self.position = position
        self.tree_size = tree_size
        self.root = root
        self.previous_root = previous_root
        self.memo = memo
        self.signature = signature
        self.last_valid_block_height = last_valid_block_height
        self.transaction = transaction
        self.slot: int | None = None

    @property
    def confirmed(self) -> bool:
        return self.slot is not None

    @classmethod
    def record(
        cls, memo: AnchorMemo, *, signature: str, last_valid_block_height: int,
        transaction: str, now: datetime,
    ) -> Anchor:
        return cls._create(
            cls.Recorded, id=anchor_id(memo.sequence), sequence=memo.sequence,
            position=memo.position, tree_size=memo.tree_size, root=memo.root,
            previous_root=memo.previous_root, memo=memo.text(), signature=signature,
            last_valid_block_height=last_valid_block_height, transaction=transaction,
            timestamp=now,
        )

    def resign(
        self, supersedes: str, *, signature: str, last_valid_block_height: int,
        transaction: str, now: datetime,
    ) -> None:
        self._check_in_force(supersedes)
        self.trigger_event(
            self.Resigned, supersedes=supersedes, signature=signature,
            last_valid_block_height=last_valid_block_height, transaction=transaction,
            timestamp=now,
        )

    def confirm(self, signature: str, slot: int, now: datetime) -> None:
        self._check_in_force(signature)
        self.trigger_event(self.Confirmed, signature=signature, slot=slot, timestamp=now)

    def _check_in_force(self, signature: str) -> None:
        if self.confirmed:
            raise SettlementConflict(f"anchor {self.sequence} is already confirmed")
        if signature != self.signature:
            raise SettlementConflict(
                f"anchor {self.sequence} is in force as {self.signature}, not {signature}"
            )
