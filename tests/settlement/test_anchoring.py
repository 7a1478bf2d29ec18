"""Anchors: the log's Merkle root is published on chain, write-ahead, on the
embedded chain and through JSON-RPC; a crash at any step neither loses nor
duplicates an anchor; a dropped or expired one is signed again; anchors chain.

The roots are checked against a tree computed here from the stored events,
not against what the anchoring process says it computed."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from application import commands as c
from application.eventlog.merkle_log import LogTree, canonical_bytes
from application.settlement.anchoring import AnchorConfig, AnchorHooks, AnchorProcess
from domain.anchor import Anchor, AnchorMemo, anchor_id, parse_anchor_memo
from domain.merkle import MerkleTree, verify_consistency
from domain.system import TREASURY_ID
from tests.settlement.conftest import DEAL, FAST_RETRY, SettlementRig, SimulatedCrash
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio
CRASH_POINTS = ("before_record", "before_send", "before_confirm")


@pytest.fixture(params=["litesvm", "rpc"])
async def anchor_rig(request, store: StoreConfig, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    rig = SettlementRig(store, tmp_path, chain_kind=request.param)
    try:
        await rig.settle()
        yield rig
    finally:
        await rig.close()


def anchorer(rig: SettlementRig, hooks: AnchorHooks | None = None, *, every_events: int = 1,
             clock=None) -> AnchorProcess:
    config = AnchorConfig(every_events=every_events, every_s=60.0, poll_interval_s=0.005,
                          retry=FAST_RETRY)
    extra = {} if clock is None else {"clock": clock}
    return AnchorProcess(writer=rig.ledger.writer, app=rig.ledger.app, chain=rig.chain,
                         config=config, hooks=hooks, **extra)


def move(rig: SettlementRig, count: int = 2) -> None:
    account = rig.open_account()
    for _ in range(count):
        rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, account, DEAL))


def reference_root(rig: SettlementRig, upto: int) -> tuple[str, int]:
    leaves = reference_leaves(rig, upto)
    return MerkleTree(leaves).root().hex(), len(leaves)


def reference_leaves(rig: SettlementRig, upto: int) -> list[bytes]:
    """The leaf hashes of the stored events up to ``upto``, leaf data written
    out here from the documented layout (docs/proofs.md)."""
    leaves = []
    after = 0
    while True:
        events = rig.ledger.app.event_log.read(after, 1000, upto)
        if not events:
            break
        for event in events:
            topic = event.topic.encode()
            data = (event.position.to_bytes(8, "big") + bytes.fromhex(event.originator_id)
                    + event.version.to_bytes(8, "big") + len(topic).to_bytes(4, "big")
                    + topic + event.state)
            assert data == canonical_bytes(event)
            leaves.append(hashlib.sha256(b"\x00" + data).digest())
        after = events[-1].position
    return leaves


def anchor(rig: SettlementRig, sequence: int) -> Anchor:
    found = rig.ledger.app.load(anchor_id(sequence))
    assert isinstance(found, Anchor), f"anchor {sequence} is not recorded"
    return found


async def anchors_on_chain(rig: SettlementRig) -> list[tuple[str, AnchorMemo]]:
    """Every successful anchor transaction the chain lists for the anchor signer."""
    found = []
    for signature in await rig.chain.anchor_signatures():
        landed = await rig.chain.transaction(signature)
        assert landed is not None
        if landed.error is None:
            memos = [m for m in map(parse_anchor_memo, landed.memos) if m is not None]
            found.extend((signature, memo) for memo in memos)
    return found


async def test_the_log_root_is_anchored_on_chain_and_confirmed(anchor_rig: SettlementRig) -> None:
    move(anchor_rig)
    process = anchorer(anchor_rig)

    await process.run_until_idle()

    first = anchor(anchor_rig, 1)
    assert first.confirmed
    root, size = reference_root(anchor_rig, first.position)
    assert (first.root, first.tree_size) == (root, size)
    ((signature, memo),) = await anchors_on_chain(anchor_rig)
    assert signature == first.signature
    ledger_id = reference_leaves(anchor_rig, first.position)[0].hex()
    assert memo == AnchorMemo(ledger_id, 1, first.position, size, root, "0" * 64)
    assert memo.text() == first.memo


async def test_a_log_grown_only_by_its_anchors_is_not_anchored_again(
    anchor_rig: SettlementRig,
) -> None:
    move(anchor_rig)
    process = anchorer(anchor_rig)
    await process.run_until_idle()

    assert not await process.step()
    assert anchor_rig.ledger.app.load(anchor_id(2)) is None


async def test_anchors_chain_and_each_later_log_extends_the_earlier(
    anchor_rig: SettlementRig,
) -> None:
    process = anchorer(anchor_rig)
    move(anchor_rig)
    await process.run_until_idle()
    move(anchor_rig, 3)
    await process.run_until_idle()

    first, second = anchor(anchor_rig, 1), anchor(anchor_rig, 2)
    assert second.previous_root == first.root and second.confirmed
    assert (second.root, second.tree_size) == reference_root(anchor_rig, second.position)
    whole = LogTree(anchor_rig.ledger.app.event_log)
    whole.catch_up()
    proof = whole.tree.consistency_proof(first.tree_size, second.tree_size)
    assert verify_consistency(first.tree_size, second.tree_size, bytes.fromhex(first.root),
                              bytes.fromhex(second.root), proof)
    on_chain = sorted(memo.sequence for _, memo in await anchors_on_chain(anchor_rig))
    assert on_chain == [1, 2]


async def test_not_due_until_enough_events_or_time(anchor_rig: SettlementRig) -> None:
    now = [0.0]
    process = anchorer(anchor_rig, every_events=10_000, clock=lambda: now[0])
    move(anchor_rig)

    assert not await process.step()
    now[0] = 61.0
    assert await process.step()
    assert anchor(anchor_rig, 1).confirmed


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_at_each_step_neither_loses_nor_duplicates_an_anchor(
    anchor_rig: SettlementRig, point: str,
) -> None:
    move(anchor_rig)
    crashed: list[str] = []

    def crash(signed) -> None:
        if not crashed:
            crashed.append(signed.signature)
            raise SimulatedCrash(point)

    with pytest.raises(SimulatedCrash):
        await anchorer(anchor_rig, AnchorHooks(**{point: crash})).run_until_idle()
    await anchor_rig.restart()
    await anchorer(anchor_rig).run_until_idle()

    first = anchor(anchor_rig, 1)
    assert first.confirmed
    if point != "before_record":
        assert first.signature == crashed[0]  # the recorded bytes were sent again
    assert [memo.sequence for _, memo in await anchors_on_chain(anchor_rig)] == [1]
    assert anchor_rig.ledger.app.load(anchor_id(2)) is None


async def test_a_dropped_anchor_whose_blockhash_expired_is_signed_again_once(
    anchor_rig: SettlementRig,
) -> None:
    move(anchor_rig)
    sends: list[str] = []

    def drop_then_expire(signed) -> None:
        sends.append(signed.signature)
        if len(sends) == 1:
            anchor_rig.embedded.drop_next_transactions(1)

    def expire(signed) -> None:
        if len(sends) == 1:
            anchor_rig.embedded.expire_blockhash()

    await anchorer(anchor_rig, AnchorHooks(before_send=drop_then_expire,
                                           before_confirm=expire)).run_until_idle()

    first = anchor(anchor_rig, 1)
    assert first.confirmed and first.signature != sends[0]
    assert [signature for signature, _ in await anchors_on_chain(anchor_rig)] == [first.signature]


async def test_a_second_anchorer_cannot_record_the_same_anchor(anchor_rig: SettlementRig) -> None:
    move(anchor_rig)
    first, second = anchorer(anchor_rig), anchorer(anchor_rig)
    second.tree.catch_up()

    await first.run_until_idle()
    move(anchor_rig)
    second.tree.anchors_recorded = 0  # it has not seen anchor 1: it tries to record it again
    await second._record_next(None)

    assert anchor(anchor_rig, 1).signature == (await anchors_on_chain(anchor_rig))[0][0]
    assert len(await anchors_on_chain(anchor_rig)) == 1


async def test_the_anchoring_role_keeps_one_hash_per_binary_digit_of_the_log(
    anchor_rig: SettlementRig,
) -> None:
    """A settler runs for months: its memory must not grow with the log."""
    process = anchorer(anchor_rig)
    move(anchor_rig, 5)
    await process.run_until_idle()

    size = process.tree.size
    assert size == reference_root(anchor_rig, process.tree.position)[1]
    assert len(process.tree.frontier.subtree_roots) == bin(size).count("1")
