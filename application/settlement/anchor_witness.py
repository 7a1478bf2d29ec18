"""Where exactly an inside rewrite begins: the anchored leaves, kept outside
the database and checked against the roots on chain.

The chain keeps only roots, so on its own an anchor that no longer holds
says only that something between the previous anchor and this one changed.
The anchoring process therefore also appends every leaf it hashes, with the
position it holds, to a *witness* (a file in the settler's data dir,
``interface.wiring.leaf_witness``). The witness is trusted for nothing: the
audit uses its first ``n`` leaves only when their root is the root the
anchor on chain states for ``n`` leaves, and then the first leaf where the
stored log and the witness differ is the first differing position (an
edit, a deletion, an insertion alike). A witness that is missing, short or
edited itself does not verify, and the audit falls back to the range.
"""

from __future__ import annotations

from typing import Protocol

from application.eventlog.merkle_log import LogTree
from domain.anchor import AnchorMemo
from domain.merkle import MerkleFrontier


class LeafWitness(Protocol):
    def add(self, index: int, position: int, leaf: bytes) -> None:
        """Leaf ``index`` of the log (kept only when it is the next one the
        witness lacks: what it holds is never replaced)."""
        ...

    def flush(self) -> None: ...

    def read(self, count: int) -> tuple[list[int], list[bytes]]:
        """The first ``count`` leaves it holds (fewer when it holds fewer)."""
        ...


def first_differing_position(tree: LogTree, memo: AnchorMemo,
                             witness: LeafWitness | None) -> int | None:
    """The first position where the stored log departs from what ``memo``
    anchored, or None when the witness cannot vouch for the anchored leaves."""
    if witness is None:
        return None
    positions, leaves = witness.read(memo.tree_size)
    if len(leaves) != memo.tree_size or not _root_is(leaves, memo.root):
        return None
    for index, (position, leaf) in enumerate(zip(positions, leaves, strict=True)):
        if index >= tree.size:
            return position  # removed from here on
        stored_position = tree.positions[index]
        if stored_position != position or tree.tree.leaf(index) != leaf:
            return min(stored_position, position)  # edited, removed or inserted here
    return None


def _root_is(leaves: list[bytes], root_hex: str) -> bool:
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root().hex() == root_hex
