"""The log as a Merkle tree: each stored event is one leaf, in log order.

Why here: the anchoring process, the audit and the proofs all need the same
leaves, and the published log is the one place all three may import.

A leaf's data is the event's *canonical bytes*, written out in
``docs/proofs.md`` so a third party can recompute it:

    u64 position | 16-byte originator id | u64 version |
    u32 length of topic | topic (UTF-8) | stored state (the rest)

(integers big-endian). Leaf ``i`` is the ``i``-th event of the log (from 0);
positions may skip numbers (a rolled-back sequence value on PostgreSQL), so
the tree keeps which position each leaf holds.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable

from application.eventlog.reader import EventLog, LogEvent
from domain.merkle import ChunkedMerkleTree, MerkleFrontier, MerkleTree, leaf_hash, root_of

_HEADER = struct.Struct(">q16sqI")
_ID_HEX = re.compile("[0-9a-f]{32}")
"""How both stores' readers give an id (``LogEvent.originator_id``)."""
ANCHOR_TOPIC_PREFIX = "domain.anchor:"
ANCHOR_RECORDED_TOPIC = "domain.anchor:Anchor.Recorded"
PAGE_EVENTS = 5000
CHUNK_BITS = 8
"""``ChunkedLogTree`` keeps two hashes and a position per 256 events (about
0.3 bytes an event); a proof reads at most two chunks of 256 events back
from the log (``benchmarks/proof_memory.py``: chunks of 1,024 keep 4x less
and make a proof 7x slower)."""
CACHED_CHUNKS = 16
"""Chunks of leaves a ``ChunkedLogTree`` keeps (about 20 KB each)."""


def canonical_bytes(event: LogEvent) -> bytes:
    topic = event.topic.encode()
    header = _HEADER.pack(event.position, _id_bytes(event.originator_id), event.version,
                          len(topic))
    return header + topic + event.state


def _id_bytes(originator_id: str) -> bytes:
    """The id's 16 bytes (from its hex text exactly: another spelling of the
    same id is another row, and must make another leaf). A row edited behind the application's back may hold
    text that is no id: it still gets a leaf (16 bytes of its SHA-256), so
    the tree, the anchors' audit and the proofs go on and the audit reports
    the root that no longer matches, instead of stopping at the row."""
    if _ID_HEX.fullmatch(originator_id):
        return bytes.fromhex(originator_id)
    return hashlib.sha256(originator_id.encode(errors="replace")).digest()[:16]


def parse_canonical(data: bytes) -> LogEvent:
    """The event a leaf's data holds (what an offline verifier reads)."""
    position, originator, version, topic_length = _HEADER.unpack_from(data)
    start = _HEADER.size
    topic = data[start:start + topic_length].decode()
    if len(topic.encode()) != topic_length:
        raise ValueError("a leaf's topic is cut short")
    return LogEvent(position, originator.hex(), version, topic, data[start + topic_length:])


class _LogLeaves:
    """What every reader of the log's leaves keeps beside its tree: how many
    anchors the log records and the last position that is not an anchor step
    (a log that only grew by its own anchors needs no new anchor)."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.position = 0
        """The position of the last leaf (0 for an empty tree)."""
        self.anchors_recorded = 0
        self.last_unanchored_kind_position = 0
        self.anchor_events: list[LogEvent] = []
        """Every anchor step, in log order (few: one per anchor or so)."""

    @property
    def size(self) -> int:
        raise NotImplementedError

    def _add_leaf(self, leaf: bytes, position: int) -> None:
        raise NotImplementedError

    def catch_up(self, upto: int | None = None) -> int:
        """Read the log past the last leaf (up to ``upto``); the tree's size."""
        while True:
            events = self._log.read(self.position, PAGE_EVENTS, upto)
            for event in events:
                self.append(event)
            if not events:
                return self.size

    def append(self, event: LogEvent) -> None:
        if event.position <= self.position:
            raise ValueError(f"event {event.position} does not follow {self.position}")
        self._add_leaf(leaf_hash(canonical_bytes(event)), event.position)
        self.position = event.position
        if event.topic == ANCHOR_RECORDED_TOPIC:
            self.anchors_recorded += 1
        if event.topic.startswith(ANCHOR_TOPIC_PREFIX):
            self.anchor_events.append(event)
        else:
            self.last_unanchored_kind_position = event.position


class LogFrontier(_LogLeaves):
    """The log's root in O(log n) memory, for the anchoring role, which
    publishes roots and answers no proofs (a long-running settler must not
    keep a hash per event)."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(log)
        self.frontier = MerkleFrontier()
        self.first_leaf: bytes | None = None
        """Leaf 0's hash: the ledger's id (``docs/proofs.md``)."""
        self.on_leaf: Callable[[int, int, bytes], None] | None = None
        """Told (index, position, hash) of each leaf as it is added (the
        anchored leaves' witness, ``application.settlement.anchor_witness``)."""

    @property
    def size(self) -> int:
        return self.frontier.size

    def root(self) -> bytes:
        return self.frontier.root()

    def _add_leaf(self, leaf: bytes, position: int) -> None:
        if self.first_leaf is None:
            self.first_leaf = leaf
        if self.on_leaf is not None:
            self.on_leaf(self.frontier.size, position, leaf)
        self.frontier.append(leaf)


class LogTree(_LogLeaves):
    """The whole Merkle tree over the stored log, caught up on demand, for
    proofs and the audit (every leaf and which position it holds)."""

    def __init__(self, log: EventLog) -> None:
        super().__init__(log)
        self.tree = MerkleTree()
        self.positions = array("q")

    @property
    def size(self) -> int:
        return self.tree.size

    def _add_leaf(self, leaf: bytes, position: int) -> None:
        self.tree.append(leaf)
        self.positions.append(position)

    def index_of(self, position: int) -> int | None:
        """The leaf holding ``position``; None when no event has it."""
        index = bisect.bisect_left(self.positions, position)
        if index < len(self.positions) and self.positions[index] == position:
            return index
        return None

    def size_at(self, position: int) -> int:
        """How many leaves are at or before ``position``."""
        return bisect.bisect_right(self.positions, position)


class LogChanged(Exception):
    """The stored log no longer hashes to what the tree read earlier: rows
    were changed behind the service's back (the audit names where)."""

    def __init__(self, first_position: int) -> None:
        super().__init__(f"the stored events from position {first_position} no longer hash "
                         "to what this process read before: run the audit (deals-ledger replay)")
        self.position = first_position


class ChunkedLogTree(_LogLeaves):
    """The log's tree for proofs in bounded memory (``ChunkedMerkleTree``):
    the position of each chunk's first leaf and a few chunks read back from
    the log, checked against the chunk roots kept, instead of every leaf and
    position. Memory: about 72 bytes per chunk of ``2**chunk_bits`` events,
    plus the chunks cached (``CACHED_CHUNKS``)."""

    def __init__(self, log: EventLog, *, chunk_bits: int = CHUNK_BITS,
                 cached_chunks: int = CACHED_CHUNKS) -> None:
        super().__init__(log)
        self.tree = ChunkedMerkleTree(chunk_bits, self._chunk_leaves)
        self._chunk_size = 1 << chunk_bits
        self._chunk_starts = array("q")
        self._filling_positions = array("q")
        self._cache: OrderedDict[int, tuple[array[int], list[bytes]]] = OrderedDict()
        self._cached_max = cached_chunks

    @property
    def size(self) -> int:
        return self.tree.size

    def _add_leaf(self, leaf: bytes, position: int) -> None:
        if self.tree.size % self._chunk_size == 0:
            self._chunk_starts.append(position)
            self._filling_positions = array("q")
        self._filling_positions.append(position)
        self.tree.append(leaf)

    def index_of(self, position: int) -> int | None:
        """The leaf holding ``position``; None when no event has it."""
        chunk = bisect.bisect_right(self._chunk_starts, position) - 1
        if chunk < 0:
            return None
        positions = self._positions_of(chunk)
        index = bisect.bisect_left(positions, position)
        if index < len(positions) and positions[index] == position:
            return chunk * self._chunk_size + index
        return None

    def _positions_of(self, chunk: int) -> array[int]:
        filling = chunk == len(self._chunk_starts) - 1 and self.tree.size % self._chunk_size
        return self._filling_positions if filling else self._loaded(chunk)[0]

    def _chunk_leaves(self, chunk: int) -> list[bytes]:
        return self._loaded(chunk)[1]

    def _loaded(self, chunk: int) -> tuple[array[int], list[bytes]]:
        cached = self._cache.get(chunk)
        if cached is not None:
            self._cache.move_to_end(chunk)
            return cached
        start = self._chunk_starts[chunk]
        events = self._log.read(start - 1, self._chunk_size)
        leaves = [leaf_hash(canonical_bytes(event)) for event in events]
        if (len(leaves) != self._chunk_size or events[0].position != start
                or root_of(leaves) != self.tree.chunk_root(chunk)):
            raise LogChanged(start)
        loaded = (array("q", (event.position for event in events)), leaves)
        self._cache[chunk] = loaded
        if len(self._cache) > self._cached_max:
            self._cache.popitem(last=False)
        return loaded
