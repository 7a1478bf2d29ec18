"""An inside rewrite cannot pass the audit against the anchors: an event
edited with every checkpoint recomputed, the last events deleted after an
anchor, an event inserted, and anchor records deleted from the log are each
reported with the first anchor they contradict, the range where the change
lies and, from the anchored leaves the settler keeps outside the database
(checked against the anchor's root), the exact first differing position."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest

from application import commands as c
from application.eventlog.decoder import EventDecoder
from application.settlement.anchor_audit import AnchorAudit, run_anchor_audit
from application.settlement.anchoring import AnchorConfig, AnchorProcess
from domain.system import TREASURY_ID
from interface.wiring.leaf_witness import LeafWitnessFile, leaf_witness
from tests.settlement.conftest import DEAL, FAST_RETRY, SettlementRig
from tests.support.raw_events import RawEvents
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["litesvm", "rpc"])
async def audit_rig(request, store: StoreConfig, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    rig = SettlementRig(store, tmp_path, chain_kind=request.param)
    try:
        await rig.settle()
        yield rig
    finally:
        await rig.close()


async def anchor_round(rig: SettlementRig, transfers: int = 3) -> list[int]:
    """Some transfers, then an anchor over them; their positions."""
    account = rig.open_account()
    positions = [rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, account, DEAL)).position
                 for _ in range(transfers)]
    config = AnchorConfig(every_events=1, poll_interval_s=0.005, retry=FAST_RETRY)
    await AnchorProcess(writer=rig.ledger.writer, app=rig.ledger.app, chain=rig.chain,
                        config=config, witness=witness_of(rig)).run_until_idle()
    return positions


def witness_of(rig: SettlementRig) -> LeafWitnessFile:
    """The anchored leaves, where the settler keeps them: its data dir."""
    return leaf_witness(rig.chain_dir.parent)


async def audit(rig: SettlementRig, *, witness: bool = True) -> AnchorAudit:
    app = rig.ledger.app
    return await run_anchor_audit(app.event_log, EventDecoder(app.mapper), rig.chain,
                                  witness_of(rig) if witness else None)


async def test_an_untouched_log_agrees_with_every_anchor(audit_rig: SettlementRig) -> None:
    await anchor_round(audit_rig)
    await anchor_round(audit_rig)

    result = await audit(audit_rig)

    assert result.ok, result.findings
    assert result.anchors_checked == 2


async def test_an_event_edited_with_its_checkpoints_names_the_anchor_and_where(
    audit_rig: SettlementRig, store: StoreConfig,
) -> None:
    await anchor_round(audit_rig)
    positions = await anchor_round(audit_rig)
    raw = RawEvents(audit_rig.ledger, store)
    target = positions[1]
    forged = raw.state_at(target, audit_rig.ledger).replace(b'"reason":""', b'"reason":"x"')
    assert forged != raw.state_at(target, audit_rig.ledger)
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s", (forged, target))

    result = await audit(audit_rig)

    (finding,) = [f for f in result.findings if f.kind == "contradicted"]
    assert finding.sequence == 2
    assert finding.after_position < target <= finding.at_or_before_position
    assert finding.first_differing_position == target
    assert f"the first differing position is {target}" in finding.detail
    assert all(f.kind == "contradicted" for f in result.findings)
    unwitnessed = await audit(audit_rig, witness=False)  # the range, still
    assert [f.first_differing_position for f in unwitnessed.findings] == [None]


async def test_the_last_events_deleted_after_an_anchor_are_named(
    audit_rig: SettlementRig, store: StoreConfig,
) -> None:
    positions = await anchor_round(audit_rig)
    raw = RawEvents(audit_rig.ledger, store)
    raw.execute("DELETE FROM {t} WHERE {id} >= %s", (positions[-1],))

    result = await audit(audit_rig)

    kinds = {(f.kind, f.sequence) for f in result.findings}
    assert ("truncated", 1) in kinds
    assert ("unknown_to_log", 1) in kinds  # the anchor's own records went with them
    (truncated,) = [f for f in result.findings if f.kind == "truncated"]
    assert truncated.first_differing_position == positions[-1]


async def test_a_perfect_inside_rewrite_passes_the_replay_but_not_the_anchors(
    audit_rig: SettlementRig, store: StoreConfig,
) -> None:
    """The event edited, then the read models and every hash-chain checkpoint
    rebuilt from the edited log: the database agrees with itself."""
    from projections.runtime import ReadSide

    positions = await anchor_round(audit_rig)
    raw = RawEvents(audit_rig.ledger, store)
    target = positions[0]
    forged = raw.state_at(target, audit_rig.ledger).replace(b'"reason":""', b'"reason":"x"')
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s", (forged, target))
    read_side = ReadSide(audit_rig.ledger.app, store.env)
    try:
        read_side.projector.rebuild()
        report = read_side.queries.audit_replay()
    finally:
        read_side.close()
    assert report.first_tampered_position is None and not report.mismatches, report

    result = await audit(audit_rig)

    (finding,) = result.findings
    assert (finding.kind, finding.sequence) == ("contradicted", 1)
    assert finding.after_position < target <= finding.at_or_before_position
    assert finding.first_differing_position == target


async def test_an_inserted_event_is_named(audit_rig: SettlementRig, store: StoreConfig) -> None:
    """Every event after ``target`` moved one position up and a forged one
    put in the gap: a longer log whose anchored prefix no longer holds."""
    positions = await anchor_round(audit_rig)
    raw = RawEvents(audit_rig.ledger, store)
    target = positions[1]
    shift = 10**9
    raw.execute("UPDATE {t} SET {id} = {id} + %s WHERE {id} > %s", (shift, target))
    raw.execute("UPDATE {t} SET {id} = {id} - %s + 1 WHERE {id} > %s", (shift, shift))
    forged_id = uuid4() if store.kind == "postgres" else uuid4().hex
    raw.execute(
        "INSERT INTO {t} (originator_id, originator_version, topic, state, {id}) "
        "SELECT %s, originator_version, topic, state, %s FROM {t} WHERE {id} = %s",
        (forged_id, target + 1, target),
    )

    result = await audit(audit_rig)

    (finding,) = [f for f in result.findings if f.kind == "contradicted"]
    assert finding.sequence == 1
    assert finding.after_position < target + 1 <= finding.at_or_before_position
    assert finding.first_differing_position == target + 1


async def test_a_row_whose_id_is_no_id_is_a_finding_not_a_crash(sqlite_rig: SettlementRig) -> None:
    positions = await anchor_round(sqlite_rig)
    raw = RawEvents(sqlite_rig.ledger, sqlite_rig.store_config)
    raw.execute("UPDATE {t} SET originator_id = %s WHERE {id} = %s", ("not-an-id", positions[0]))

    result = await audit(sqlite_rig)

    assert [(f.kind, f.sequence) for f in result.findings] == [("contradicted", 1)]


async def test_a_witness_edited_too_is_not_believed(
    audit_rig: SettlementRig, store: StoreConfig,
) -> None:
    """Whoever rewrites the log and the witness file alike gets the range,
    never a position the chain does not vouch for."""
    positions = await anchor_round(audit_rig)
    raw = RawEvents(audit_rig.ledger, store)
    target = positions[1]
    forged = raw.state_at(target, audit_rig.ledger).replace(b'"reason":""', b'"reason":"x"')
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s", (forged, target))
    path = witness_of(audit_rig).path
    data = bytearray(path.read_bytes())
    data[8] ^= 1  # a byte of the first anchored leaf
    path.write_bytes(bytes(data))

    result = await audit(audit_rig)

    (finding,) = [f for f in result.findings if f.kind == "contradicted"]
    assert finding.first_differing_position is None
    assert finding.after_position < target <= finding.at_or_before_position
