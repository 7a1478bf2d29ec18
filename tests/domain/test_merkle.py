"""RFC 6962 hashing and proofs, against the RFC's published test vectors and a
reference written here straight from the RFC's recursive definitions (slow,
obviously right), so the fast tree cannot agree with itself by accident."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.merkle import (
    EMPTY_ROOT,
    ChunkedMerkleTree,
    MerkleFrontier,
    MerkleProofError,
    MerkleTree,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The leaves and roots Certificate Transparency publishes with RFC 6962.
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {  # (0-based index, size) -> PATH
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (0, 1): [],
}
CT_CONSISTENCY = {  # (old size, new size) -> PROOF
    (1, 1): [],
    (1, 8): CT_INCLUSION[(0, 8)],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


# --- the reference: RFC 6962 section 2.1, word for word ---------------------------

def ref_mth(data: list[bytes]) -> bytes:
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = ref_k(len(data))
    return hashlib.sha256(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:])).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    if len(data) == 1:
        return []
    k = ref_k(len(data))
    if m < k:
        return ref_path(m, data[:k]) + [ref_mth(data[k:])]
    return ref_path(m - k, data[k:]) + [ref_mth(data[:k])]


def ref_proof(m: int, data: list[bytes]) -> list[bytes]:
    return ref_subproof(m, data, True) if 0 < m < len(data) else []


def ref_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [ref_mth(data)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, data[:k], b) + [ref_mth(data[k:])]
    return ref_subproof(m - k, data[k:], False) + [ref_mth(data[:k])]


def tree_of(data: list[bytes]) -> MerkleTree:
    return MerkleTree(leaf_hash(d) for d in data)


# --- published vectors ------------------------------------------------------------

def test_roots_of_every_prefix_match_the_published_ones():
    tree = tree_of(CT_LEAVES)
    assert [tree.root(n).hex() for n in range(9)] == CT_ROOTS
    assert EMPTY_ROOT.hex() == CT_ROOTS[0] == root_of([]).hex()


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_inclusion_proofs_match_the_published_ones(index, size):
    tree = tree_of(CT_LEAVES)
    path = tree.inclusion_proof(index, size)
    assert [p.hex() for p in path] == CT_INCLUSION[(index, size)]
    assert verify_inclusion(tree.leaf(index), index, size, path, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CT_CONSISTENCY))
def test_consistency_proofs_match_the_published_ones(old, new):
    tree = tree_of(CT_LEAVES)
    proof = tree.consistency_proof(old, new)
    assert [p.hex() for p in proof] == CT_CONSISTENCY[(old, new)]
    roots = [bytes.fromhex(r) for r in CT_ROOTS]
    assert verify_consistency(old, new, roots[old], roots[new], proof)


# --- properties against the reference -----------------------------------------------

LOGS = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=70))
def test_the_frontier_answers_every_prefix_root_in_a_hash_per_binary_digit(data):
    frontier = MerkleFrontier()
    assert frontier.root() == EMPTY_ROOT
    for size, item in enumerate(data, start=1):
        frontier.append(leaf_hash(item))
        assert frontier.root() == ref_mth(data[:size])
        assert len(frontier.subtree_roots) == bin(size).count("1")


@settings(max_examples=60, deadline=None)
@given(LOGS)
def test_every_root_and_inclusion_proof_is_the_rfcs(data):
    tree = tree_of(data)
    for size in range(len(data) + 1):
        assert tree.root(size) == ref_mth(data[:size])
    n = len(data)
    for index in range(n):
        path = tree.inclusion_proof(index, n)
        assert path == ref_path(index, data)
        assert verify_inclusion(leaf_hash(data[index]), index, n, path, ref_mth(data))


@settings(max_examples=60, deadline=None)
@given(LOGS, st.data())
def test_every_consistency_proof_is_the_rfcs_and_verifies(data, draw):
    tree = tree_of(data)
    new = draw.draw(st.integers(1, len(data)))
    old = draw.draw(st.integers(0, new))
    proof = tree.consistency_proof(old, new)
    assert proof == ref_proof(old, data[:new])
    assert verify_consistency(old, new, ref_mth(data[:old]), ref_mth(data[:new]), proof)


def flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1:]


@settings(max_examples=60, deadline=None)
@given(LOGS, st.data())
def test_an_inclusion_proof_fails_after_any_one_byte_change(data, draw):
    tree = tree_of(data)
    n = len(data)
    index = draw.draw(st.integers(0, n - 1))
    leaf, path, root = tree.leaf(index), tree.inclusion_proof(index, n), tree.root()
    at = draw.draw(st.integers(0, 31))
    assert not verify_inclusion(flip(leaf, at), index, n, path, root)
    assert not verify_inclusion(leaf, index, n, path, flip(root, at))
    if path:
        node = draw.draw(st.integers(0, len(path) - 1))
        bad = [*path[:node], flip(path[node], at), *path[node + 1:]]
        assert not verify_inclusion(leaf, index, n, bad, root)
        assert not verify_inclusion(leaf, index, n, path[:-1], root)
        assert not verify_inclusion(leaf, index, n, [*path, path[0]], root)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=12), min_size=2, max_size=70), st.data())
def test_a_consistency_proof_fails_after_any_one_byte_change(data, draw):
    tree = tree_of(data)
    new = draw.draw(st.integers(2, len(data)))
    old = draw.draw(st.integers(1, new - 1))
    proof, old_root, new_root = tree.consistency_proof(old, new), tree.root(old), tree.root(new)
    at = draw.draw(st.integers(0, 31))
    assert not verify_consistency(old, new, flip(old_root, at), new_root, proof)
    assert not verify_consistency(old, new, old_root, flip(new_root, at), proof)
    node = draw.draw(st.integers(0, len(proof) - 1))
    bad = [*proof[:node], flip(proof[node], at), *proof[node + 1:]]
    assert not verify_consistency(old, new, old_root, new_root, bad)
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])


def test_a_rewritten_prefix_is_not_consistent():
    data = [bytes([i]) for i in range(9)]
    tree, rewritten = tree_of(data), tree_of([b"x", *data[1:]])
    proof = rewritten.consistency_proof(4, 9)
    assert not verify_consistency(4, 9, tree.root(4), rewritten.root(9), proof)


def test_a_leaf_cannot_pass_for_a_node():
    """The 0x00/0x01 prefixes: a node's children given as one leaf's data do not
    hash to that node (the second-preimage attack RFC 6962 rules out)."""
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(a + b) != MerkleTree([a, b]).root()


def test_proofs_outside_the_tree_are_refused():
    tree = tree_of(CT_LEAVES)
    with pytest.raises(MerkleProofError):
        tree.inclusion_proof(8, 8)
    with pytest.raises(MerkleProofError):
        tree.root(9)
    with pytest.raises(MerkleProofError):
        tree.consistency_proof(5, 4)
    assert not verify_inclusion(tree.leaf(0), 1, 1, [], tree.root(1))
    assert not verify_consistency(0, 3, tree.root(1), tree.root(3), [])


@settings(max_examples=60, deadline=None)
@given(LOGS, st.integers(0, 3), st.data())
def test_a_chunked_tree_answers_as_the_whole_tree(data, chunk_bits, draw):
    """Kept in chunks (their leaves given back on demand, as the log gives
    them), the tree has the same roots and proofs as the whole one."""
    leaves = [leaf_hash(item) for item in data]
    chunk = 1 << chunk_bits
    asked: list[int] = []

    def load(index: int) -> list[bytes]:
        asked.append(index)
        return leaves[index * chunk:(index + 1) * chunk]

    whole, chunked = MerkleTree(leaves), ChunkedMerkleTree(chunk_bits, load)
    for leaf in leaves:
        chunked.append(leaf)
    n = len(leaves)
    assert chunked.size == n
    for size in range(n + 1):
        assert chunked.root(size) == whole.root(size)
    index = draw.draw(st.integers(0, n - 1))
    size = draw.draw(st.integers(index + 1, n))
    assert chunked.inclusion_proof(index, size) == whole.inclusion_proof(index, size)
    old = draw.draw(st.integers(0, size))
    assert chunked.consistency_proof(old, size) == whole.consistency_proof(old, size)
    assert all(0 <= asked_chunk < n // chunk for asked_chunk in asked)  # finished chunks only
