"""Proofs an auditor checks offline (docs/proofs.md): the latest anchored
digest, an event's inclusion proof up to an anchored root, and the
consistency of two anchored roots. Answers are the proof documents
``deals-ledger verify-proof`` reads, as they are."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from domain.errors import InvalidRequest
from interface.http.deps import CAN_READ, IS_ADMIN, Ledger, in_thread
from interface.http.json_body import JsonRoute
from interface.http.routers import refusals
from interface.http.schemas.types import POSITION_MAX

router = APIRouter(tags=["proofs"], route_class=JsonRoute)


@router.get(
    "/v1/audit/digest", dependencies=[IS_ADMIN],
    description="The latest confirmed anchor: `sequence`, `position`, `tree_size`, `root`, "
                "`previous_root`, `memo`, `signature`, `slot`, `signer`; `anchor` is null "
                "before the first.",
)
async def get_audit_digest(ledger: Ledger) -> dict[str, Any]:
    return {"anchor": await in_thread(ledger.proofs.digest)}


@router.get(
    "/v1/transfers/{transfer_id}/proof", dependencies=[CAN_READ], responses=refusals(404, 409),
    description="The event that recorded the movement, its canonical bytes and Merkle "
                "inclusion proof up to the first confirmed anchor covering it, and that anchor "
                "(409 not_anchored until one does).",
)
async def get_transfer_proof(transfer_id: UUID, ledger: Ledger) -> dict[str, Any]:
    result: dict[str, Any] = await in_thread(ledger.proofs.transfer_proof, transfer_id)
    return result


@router.get(
    "/v1/audit/proof", dependencies=[IS_ADMIN], responses=refusals(404, 409),
    description="The proof of the event at `position` (as for a transfer).",
)
async def get_event_proof(
    ledger: Ledger, position: Annotated[int, Query(ge=1, le=POSITION_MAX)],
) -> dict[str, Any]:
    result: dict[str, Any] = await in_thread(ledger.proofs.event_proof, position)
    return result


@router.get(
    "/v1/audit/consistency", dependencies=[IS_ADMIN], responses=refusals(409, 422),
    description="A consistency proof between anchors `from` and `to` (sequence numbers, "
                "`from` <= `to`): the later anchored log extends the earlier one.",
)
async def get_consistency_proof(
    ledger: Ledger, first: Annotated[int, Query(alias="from", ge=1, le=POSITION_MAX)],
    last: Annotated[int, Query(alias="to", ge=1, le=POSITION_MAX)],
) -> dict[str, Any]:
    if first > last:
        raise InvalidRequest("'from' must not be past 'to'")
    result: dict[str, Any] = await in_thread(ledger.proofs.consistency, first, last)
    return result
