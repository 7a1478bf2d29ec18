"""Tamper evidence: a running hash over the stored event log.

Each event's link is ``H(previous link || position || originator id ||
version || topic || stored state bytes)``, so changing, removing or
inserting any stored event changes every link from it on. The projector
extends the chain page by page and checkpoints it in its own table, in the
same transaction as the page's rows and tracking position: one row per page
with the chain head and, packed, each event's position and the first eight
bytes of its link. An audit replay recomputes the chain from the stored log
and walks it against the checkpoints, which pinpoints the first position
where the log differs from what was checkpointed:

- a checkpointed position missing from the log: the event was removed;
- a position in the log that no checkpoint lists, below the last
  checkpointed position: an event was inserted;
- the same position with another link: the event was altered (or one
  before it was, which the earlier positions rule out).

Only events that the projector has already checkpointed can be verified;
anyone able to rewrite both the events and the checkpoints can hide a
change, so the chain head is also exported (metrics, replay report) to be
kept elsewhere.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

from application.eventlog.reader import LogEvent

_sha256 = hashlib.sha256
GENESIS_LINK = b"\x00" * 32
DIGEST_BYTES = 8
_HEADER = struct.Struct(">qqI")


def link(previous: bytes, event: LogEvent) -> bytes:
    topic = event.topic.encode()
    return _sha256(b"".join((
        previous, _HEADER.pack(event.position, event.version, len(topic)),
        event.originator_id.encode(), topic, event.state,
    ))).digest()


@dataclass(frozen=True)
class Checkpoint:
    """The chain over one page of events."""

    first_position: int
    last_position: int
    head: bytes
    positions: bytes  # packed signed 64-bit positions, native order
    digests: bytes  # DIGEST_BYTES of each event's link, in the same order

    def entries(self) -> Iterator[tuple[int, bytes]]:
        positions = array("q")
        positions.frombytes(self.positions)
        digests = self.digests
        return zip(positions, [digests[at:at + DIGEST_BYTES]
                               for at in range(0, len(digests), DIGEST_BYTES)], strict=True)


class HashChain:
    """The chain's head, extended one page at a time."""

    def __init__(self, position: int = 0, head: bytes = GENESIS_LINK) -> None:
        self.position = position
        self.head = head

    def extend(self, events: Iterable[LogEvent]) -> Checkpoint | None:
        """The checkpoint for the events past the head (earlier ones, seen
        again by a rebuild, were checkpointed already); None if none are new.
        The head moves only with ``advance``, after the checkpoint commits."""
        head = self.head
        positions = array("q")
        digests = bytearray()
        for event in events:
            if event.position <= self.position:
                continue
            head = link(head, event)
            positions.append(event.position)
            digests += head[:DIGEST_BYTES]
        if not positions:
            return None
        return Checkpoint(positions[0], positions[-1], head, positions.tobytes(), bytes(digests))

    def advance(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None:
            self.position = checkpoint.last_position
            self.head = checkpoint.head


@dataclass
class ChainVerifier:
    """Walks recomputed links against the checkpointed ones, in position
    order, and remembers the first position where they part."""

    checkpoints: Iterator[tuple[int, bytes]]
    last_checkpointed: int
    head: bytes = GENESIS_LINK
    first_tampered: int | None = None
    detail: str = ""

    def feed(self, events: Iterable[LogEvent]) -> None:
        """Extend the chain over ``events`` and judge the checkpointed ones.
        A page is compared with as many checkpointed entries in one list
        comparison; only a page that differs is walked event by event to
        name the first position and what happened there."""
        head, last = self.head, self.last_checkpointed
        judged: list[tuple[int, bytes]] = []
        for event in events:
            head = link(head, event)
            if event.position <= last:
                judged.append((event.position, head[:DIGEST_BYTES]))
        self.head = head
        if self.first_tampered is not None or not judged:
            return
        expected = list(islice(self.checkpoints, len(judged)))
        if judged == expected:
            return
        self.checkpoints = chain(expected, self.checkpoints)
        for position, digest in judged:
            self._check(position, digest)
            if self.first_tampered is not None:
                return

    def _next_checkpointed(self) -> tuple[int, bytes] | None:
        return next(self.checkpoints, None)

    def _check(self, position: int, digest: bytes) -> None:
        if position > self.last_checkpointed:
            return
        expected = self._next_checkpointed()
        if expected is None or position < expected[0]:
            self._found(position, "inserted")
            return
        if position > expected[0]:
            self._found(expected[0], "removed")
            return
        if digest != expected[1]:
            self._found(position, "altered")

    def finish(self, upto: int) -> None:
        """After the last event: a checkpointed position at or below ``upto``
        that the log no longer has was removed."""
        if self.first_tampered is not None:
            return
        expected = self._next_checkpointed()
        if expected is not None and expected[0] <= min(upto, self.last_checkpointed):
            self._found(expected[0], "removed")

    def _found(self, position: int, what: str) -> None:
        self.first_tampered = position
        self.detail = what
