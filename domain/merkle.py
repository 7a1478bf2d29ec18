"""The log's Merkle tree: RFC 6962 hashing, inclusion and consistency proofs.

Why RFC 6962 (Certificate Transparency) and not a hash of our own: an auditor
can check a proof with any standard verifier. Leaves are hashed as
``SHA-256(0x00 || data)`` and nodes as ``SHA-256(0x01 || left || right)``, so
a leaf can never pass for a node; the tree over ``n`` leaves splits at the
largest power of two below ``n`` (RFC 6962 section 2.1).

Pure: no I/O, no clock. ``MerkleTree`` keeps every complete perfect subtree
(one byte string per level), so appending costs amortised one node, a root
O(log n) and a proof O(log² n) lookups; the verifiers are RFC 9162's
algorithms (sections 2.1.3.2 and 2.1.4.2), which never build a tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the tree with no leaves (RFC 6962: the hash of the empty string)."""


class MerkleProofError(ValueError):
    """A proof was asked for sizes or an index the tree cannot answer."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes, any prefix answerable."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_BYTES

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash; complete the perfect subtrees it closes."""
        if len(leaf) != HASH_BYTES:
            raise ValueError("a leaf hash is 32 bytes")
        level, node, count = 0, leaf, self.size + 1
        while True:
            self._levels[level] += node
            if count % 2:
                return
            node = node_hash(self._perfect(level, count - 2), node)
            level, count = level + 1, count // 2
            if level == len(self._levels):
                self._levels.append(bytearray())

    def leaf(self, index: int) -> bytes:
        return self._perfect(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._range_root(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]): leaf ``index`` is in the tree of ``size``."""
        self._check_size(size)
        if not 0 <= index < size:
            raise MerkleProofError(f"leaf {index} is not in a tree of {size} leaves")
        return self._path(index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size]): the tree of ``new_size``
        extends the tree of ``old_size``, nothing of it rewritten."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise MerkleProofError(f"a tree of {old_size} leaves cannot precede one of {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    # --- the RFC's recursions, over [start, end) with start aligned --------------

    def _path(self, index: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = _split(end - start)
        if index < start + k:
            return [*self._path(index, start, start + k), self._range_root(start + k, end)]
        return [*self._path(index, start + k, end), self._range_root(start, start + k)]

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        if start + m == end:
            return [] if whole else [self._range_root(start, end)]
        k = _split(end - start)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self._range_root(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._range_root(start, start + k)]

    def _range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), where start is a multiple of a power of
        two at least end - start (every range the recursions visit is): the
        perfect subtrees of the length's binary digits, folded from the right."""
        roots: list[bytes] = []
        offset, length = start, end - start
        for level in reversed(range(length.bit_length())):
            if length >> level & 1:
                roots.append(self._perfect(level, offset >> level))
                offset += 1 << level
        result = roots.pop()
        while roots:
            result = node_hash(roots.pop(), result)
        return result

    def _perfect(self, level: int, index: int) -> bytes:
        return bytes(self._levels[level][index * HASH_BYTES:(index + 1) * HASH_BYTES])

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise MerkleProofError(f"the tree has {self.size} leaves, not {size}")


class ChunkedMerkleTree(MerkleTree):
    """The same tree, answering the same proofs, in bounded memory: it keeps
    the roots of whole chunks of ``2**chunk_bits`` leaves (a ``MerkleTree``
    over them) and the leaves of the chunk being filled, and asks
    ``load_chunk(c)`` for the leaf hashes of chunk ``c`` whenever a node
    inside a finished chunk is needed (a proof needs at most two chunks:
    the leaf's and the tree size's last). Why: a long-running API process
    must not keep a hash per event (about 72 bytes each with the positions);
    this keeps about 72 / 2**chunk_bits bytes per event, plus what the
    caller caches of loaded chunks. ``load_chunk`` is the caller's (the log);
    this class does no I/O itself."""

    def __init__(self, chunk_bits: int, load_chunk: Callable[[int], Sequence[bytes]]) -> None:
        super().__init__()
        self.chunk_bits = chunk_bits
        self._load_chunk = load_chunk
        self._chunk_roots = MerkleTree()
        self._filling = bytearray()

    @property
    def size(self) -> int:
        return (self._chunk_roots.size << self.chunk_bits) + len(self._filling) // HASH_BYTES

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_BYTES:
            raise ValueError("a leaf hash is 32 bytes")
        self._filling += leaf
        if len(self._filling) == HASH_BYTES << self.chunk_bits:
            self._chunk_roots.append(_perfect_root(self._filling, 0, self.chunk_bits))
            self._filling = bytearray()

    def chunk_root(self, chunk: int) -> bytes:
        """A finished chunk's root, as kept (to check what ``load_chunk`` gave)."""
        return self._chunk_roots.leaf(chunk)

    def _perfect(self, level: int, index: int) -> bytes:
        if level >= self.chunk_bits:
            return self._chunk_roots._perfect(level - self.chunk_bits, index)
        shift = self.chunk_bits - level
        chunk, first = index >> shift, (index & ((1 << shift) - 1)) << level
        if chunk == self._chunk_roots.size:
            leaves = bytes(self._filling)
        else:
            leaves = b"".join(self._load_chunk(chunk))
        return _perfect_root(leaves, first, level)


def _perfect_root(leaves: bytes | bytearray, first: int, level: int) -> bytes:
    """The root of the perfect subtree of ``2**level`` leaf hashes from leaf ``first``."""
    nodes = [bytes(leaves[(first + i) * HASH_BYTES:(first + i + 1) * HASH_BYTES])
             for i in range(1 << level)]
    while len(nodes) > 1:
        nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]


class MerkleFrontier:
    """The root of an append-only RFC 6962 tree in O(log n) memory.

    Why: a process that only publishes roots (the anchoring role) must not
    hold a hash per event for as long as it runs. Keeps one root per
    perfect subtree of the size's binary digits (largest first), which is
    all a root needs; a proof needs the whole ``MerkleTree``."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.size = 0
        self.subtree_roots: list[bytes] = []
        """Roots of the perfect subtrees, leftmost (largest) first."""
        for leaf in leaf_hashes:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash; merge the equal-sized subtrees it completes."""
        if len(leaf) != HASH_BYTES:
            raise ValueError("a leaf hash is 32 bytes")
        node, count = leaf, self.size
        while count & 1:
            node = node_hash(self.subtree_roots.pop(), node)
            count >>= 1
        self.subtree_roots.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH of every leaf so far: the subtrees folded from the right."""
        if not self.subtree_roots:
            return EMPTY_ROOT
        result = self.subtree_roots[-1]
        for left in reversed(self.subtree_roots[:-1]):
            result = node_hash(left, result)
        return result


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    return MerkleTree(leaf_hashes).root()


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` lead from leaf hash ``leaf`` at
    ``index`` to ``root`` of a tree of ``size`` leaves?"""
    if not 0 <= index < size or any(len(node) != HASH_BYTES for node in path):
        return False
    fn, sn, result = index, size - 1, leaf
    for node in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(node, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: does ``path`` prove the tree of ``new_size``
    (``new_root``) extends the tree of ``old_size`` (``old_root``)?"""
    if not 0 <= old_size <= new_size or any(len(node) != HASH_BYTES for node in path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if not path:
        return False
    nodes = list(path)
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = nodes[0]
    for node in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first, second = node_hash(node, first), node_hash(node, second)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first == old_root and second == new_root
