"""Proofs checked the way an auditor would: ``deals-ledger verify-proof`` with
only the proof file and the chain (the embedded chain's folder, or a
JSON-RPC endpoint), never the ledger's database. A proof for every event
verifies; one byte changed in the event, the path or the root fails it."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application import commands as c
from application.eventlog.decoder import EventDecoder
from application.settlement.anchoring import AnchorConfig, AnchorProcess
from domain.system import TREASURY_ID
from interface.cli.main import main
from interface.cli.verify_proof import LandedAnchor, check
from projections.proofs import LogProofs, NotAnchored
from tests.settlement.conftest import DEAL, FAST_RETRY, SettlementRig
from tests.support.stores import StoreConfig

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["litesvm", "rpc"])
async def proof_rig(request, store: StoreConfig, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    rig = SettlementRig(store, tmp_path, chain_kind=request.param)
    try:
        await rig.settle()
        yield rig
    finally:
        await rig.close()


async def anchored(rig: SettlementRig, transfers: int = 3) -> list:
    account = rig.open_account()
    ids = [uuid4() for _ in range(transfers)]
    for transfer_id in ids:
        rig.execute(c.TransferFunds(transfer_id, TREASURY_ID, account, DEAL))
    config = AnchorConfig(every_events=1, poll_interval_s=0.005, retry=FAST_RETRY)
    await AnchorProcess(writer=rig.ledger.writer, app=rig.ledger.app, chain=rig.chain,
                        config=config).run_until_idle()
    return ids


def proofs_of(rig: SettlementRig) -> LogProofs:
    """Chunks of 4 events, so proofs read finished chunks back from the log
    as a long log's do (the service's chunks hold 1,024)."""
    return LogProofs(rig.ledger.app.event_log, EventDecoder(rig.ledger.app.mapper),
                     rig.chain.anchor_signer, chunk_bits=2)


async def verify(rig: SettlementRig, document: dict, tmp_path: Path, *extra: str) -> int:
    """``deals-ledger verify-proof`` as an auditor runs it (in a thread: it
    runs an event loop of its own)."""
    path = tmp_path / f"proof-{uuid4().hex}.json"
    path.write_text(json.dumps(document))
    where = (["--rpc-url", rig.server.url] if rig.server is not None
             else ["--chain-dir", str(rig.chain_dir)])
    return await asyncio.to_thread(main, ["verify-proof", str(path), *where, *extra])


async def test_a_transfer_proof_verifies_with_the_chain_alone(
    proof_rig: SettlementRig, tmp_path: Path, capsys,
) -> None:
    ids = await anchored(proof_rig)
    proof = proofs_of(proof_rig).transfer_proof(ids[1])

    assert await verify(proof_rig, proof, tmp_path, "--anchor-signer",
                  proof_rig.chain.anchor_signer) == 0
    assert "OK: event at position" in capsys.readouterr().out
    assert await verify(proof_rig, proof, tmp_path, "--json") == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert proof["event"]["originator_id"] == str(ids[1])
    assert proof["event"]["topic"].endswith("Transfer.Recorded")


async def test_a_proof_fails_against_another_anchor_signer_or_an_altered_event(
    proof_rig: SettlementRig, tmp_path: Path, capsys,
) -> None:
    ids = await anchored(proof_rig)
    proof = proofs_of(proof_rig).transfer_proof(ids[0])
    impostor = "11111111111111111111111111111112"

    assert await verify(proof_rig, proof, tmp_path, "--anchor-signer", impostor) == 4  # findings
    assert "not signed by the anchor signer" in capsys.readouterr().out
    assert await verify(proof_rig, proof, tmp_path, "--anchor-signer", impostor, "--json") == 4
    reported = json.loads(capsys.readouterr().out)
    assert reported["ok"] is False and reported["summary"] is None
    assert any("not signed by the anchor signer" in failed for failed in reported["failed"])
    altered = copy.deepcopy(proof)
    data = bytearray(base64.b64decode(altered["event"]["canonical_bytes"]))
    data[-2] ^= 0x01
    altered["event"]["canonical_bytes"] = base64.b64encode(bytes(data)).decode()
    altered["event"]["state"] = bytes(data[-len(proof["event"]["state"].encode()):]).decode(
        errors="replace")
    assert await verify(proof_rig, altered, tmp_path) == 4  # exit_codes.FINDINGS
    assert "inclusion path does not lead" in capsys.readouterr().out


async def test_a_consistency_proof_between_two_anchors_verifies(
    proof_rig: SettlementRig, tmp_path: Path,
) -> None:
    await anchored(proof_rig)
    await anchored(proof_rig, 2)
    proofs = proofs_of(proof_rig)

    document = proofs.consistency(1, 2)

    assert await verify(proof_rig, document, tmp_path) == 0
    assert proofs.digest()["sequence"] == 2
    document["path"][0] = "00" * 32
    assert await verify(proof_rig, document, tmp_path) == 4  # exit_codes.FINDINGS


async def test_a_transfer_proof_is_only_for_a_transfer(proof_rig: SettlementRig) -> None:
    from domain.errors import TransferNotFound

    await anchored(proof_rig)
    account = proof_rig.accounts[-1]

    with pytest.raises(TransferNotFound):
        proofs_of(proof_rig).transfer_proof(account)
    assert proofs_of(proof_rig).event_proof(1)["event"]["position"] == 1


async def test_an_event_past_the_last_anchor_is_not_anchored_yet(
    proof_rig: SettlementRig,
) -> None:
    await anchored(proof_rig)
    later = uuid4()
    proof_rig.execute(c.TransferFunds(later, TREASURY_ID, proof_rig.open_account(), DEAL))

    with pytest.raises(NotAnchored):
        proofs_of(proof_rig).transfer_proof(later)


# --- every event of a generated log, offline ----------------------------------------------


def flip_hex(text: str, at: int) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[at % len(raw)] ^= 0x01
    return raw.hex()


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(amounts=st.lists(st.integers(1, 50), min_size=1, max_size=6), data=st.data())
async def test_every_event_of_a_generated_log_proves_and_any_byte_change_fails(
    sqlite_rig: SettlementRig, amounts: list[int], data,
) -> None:
    await sqlite_rig.settle()
    account = sqlite_rig.open_account()
    for amount in amounts:
        sqlite_rig.execute(c.TransferFunds(uuid4(), TREASURY_ID, account, amount))
    config = AnchorConfig(every_events=1, poll_interval_s=0.001, retry=FAST_RETRY)
    await AnchorProcess(writer=sqlite_rig.ledger.writer, app=sqlite_rig.ledger.app,
                        chain=sqlite_rig.chain, config=config).run_until_idle()
    proofs = proofs_of(sqlite_rig)
    digest = proofs.digest()
    landed = {}
    for signature in await sqlite_rig.chain.anchor_signatures():
        found = await sqlite_rig.chain.transaction(signature)
        landed[signature] = LandedAnchor(found.error, found.slot, found.memos,
                                         (sqlite_rig.chain.anchor_signer,))
    for position in range(1, digest["position"] + 1):
        proof = proofs.event_proof(position)
        assert check(proof, landed.get, None) == [], position
        at = data.draw(st.integers(0, 1 << 16))
        bad_event = copy.deepcopy(proof)
        raw = bytearray(base64.b64decode(proof["event"]["canonical_bytes"]))
        raw[at % len(raw)] ^= 0x01
        bad_event["event"]["canonical_bytes"] = base64.b64encode(bytes(raw)).decode()
        assert check(bad_event, landed.get, None), position
        bad_root = copy.deepcopy(proof)
        bad_root["anchor"]["root"] = flip_hex(proof["anchor"]["root"], at)
        assert check(bad_root, landed.get, None), position
        if proof["inclusion"]["path"]:
            bad_path = copy.deepcopy(proof)
            nodes = bad_path["inclusion"]["path"]
            index = at % len(nodes)
            nodes[index] = flip_hex(nodes[index], at // 7)
            assert check(bad_path, landed.get, None), position


async def test_an_event_changed_behind_the_service_is_refused_not_proved(
    proof_rig: SettlementRig, store: StoreConfig,
) -> None:
    """The tree keeps chunk roots and reads leaves back from the log: an
    event edited since it was read is a damaged store (503), never a proof
    of what the log no longer holds."""
    from projections.proofs import LogChangedUnderProof
    from tests.support.raw_events import RawEvents

    ids = await anchored(proof_rig, 9)
    proofs = proofs_of(proof_rig)
    early = proofs.transfer_proof(ids[0])["event"]["position"]
    late = proofs.transfer_proof(ids[-1])["event"]["position"]
    raw = RawEvents(proof_rig.ledger, store)
    for position in (early, late):
        state = raw.state_at(position, proof_rig.ledger)
        raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s",
                    (state.replace(b'"reason":""', b'"reason":"x"'), position))
    for transfer_id, position in ((ids[0], early), (ids[-1], late)):
        with pytest.raises(LogChangedUnderProof) as refused:
            proofs.transfer_proof(transfer_id)
        assert refused.value.position == position
