"""Transfers: single, batch (atomic or not), by a spender, reversal; and a
transfer with its settlement status."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from application.references import EXTERNAL_REF_LENGTH_MAX
from interface.http.deps import (
    CAN_READ,
    AdminCommand,
    Queries,
    Read,
    WriteCommand,
    in_thread,
    planned,
)
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, keyed, refusals, replay_aware
from interface.http.schemas.listing import Cursor, Limit, Listing, MovementKind
from interface.http.schemas.requests import (
    ReverseRequest,
    TransferBatchRequest,
    TransferFromRequest,
    TransferRequest,
)
from interface.http.schemas.responses import (
    BatchResponse,
    MovementResponse,
    TransactionPage,
    TransactionResponse,
)
from projections.queries import PAGE_SIZE_DEFAULT

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=JsonRoute)

MOVEMENT_REFUSALS = refusals(402, 404, 409, 423)
ExternalRef = Annotated[str, Query(
    min_length=1, max_length=EXTERNAL_REF_LENGTH_MAX,
    description="the external_ref the movements' commands carried")]


@router.post("", status_code=201, response_model=MovementResponse,
             responses={200: REPLAYED, **MOVEMENT_REFUSALS})
async def transfer(body: TransferRequest, sent: WriteCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return MovementResponse.of(outcome)


@router.post(
    "/batch", response_model=BatchResponse,
    responses={200: REPLAYED, **MOVEMENT_REFUSALS},
    description=(
        "Up to 8,000 transfers. Not atomic: each item succeeds or fails on its own and the "
        "answer is 200 with one result per item. Atomic: all or none; when an item is "
        "refused nothing is applied and the answer is that item's refusal (its status code "
        "and error code) with `error.item_index` naming it. A malformed item (bad amount, "
        "unknown field) refuses the whole request either way. Each item is idempotent by its "
        "`transfer_id`: repeated, an item applied before answers `ok` again and a refused one "
        "is tried anew (a refusal leaves no trace). When every item was applied before, the "
        "answer is exactly the first one, with `Idempotent-Replayed: true`; `position` is "
        "the latest of the items' own positions. A batch has no id of its own, so it takes "
        "no `Idempotency-Key`. A non-atomic batch is committed 500 items at a time: one "
        "answer, but a reader may see its first chunks before the rest, and a 503 midway "
        "says how many items were committed (send the batch again to complete it). An "
        "atomic batch is one commit."
    ),
)
async def transfer_batch(body: TransferBatchRequest, sent: WriteCommand, response: Response):
    command = keyed(body.command(), sent.key, what="a batch (each item has its own transfer_id)")
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller),
                           created=False)
    return BatchResponse.of(outcome)


@router.post("/from", status_code=201, response_model=MovementResponse,
             responses={200: REPLAYED, **MOVEMENT_REFUSALS})
async def transfer_from(body: TransferFromRequest, sent: WriteCommand, response: Response):
    command = keyed(body.command(), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return MovementResponse.of(outcome)


@router.post("/{transfer_id}/reverse", status_code=201, response_model=MovementResponse,
             responses={200: REPLAYED, **MOVEMENT_REFUSALS})
async def reverse_transfer(transfer_id: UUID, body: ReverseRequest, sent: AdminCommand,
                           response: Response):
    command = keyed(body.command(transfer_id), sent.key)
    outcome = replay_aware(response, await sent.ledger.execute(command, sent.caller))
    return MovementResponse.of(outcome)


@router.get("", response_model=TransactionPage, dependencies=[CAN_READ])
async def find_transfers(external_ref: ExternalRef, queries: Queries, read: Read,
                         pages: Listing, limit: Limit = PAGE_SIZE_DEFAULT,
                         cursor: Cursor = None, kind: MovementKind = None):
    """The movements whose commands carried ``external_ref``, oldest first
    (``order=desc``: newest first), a page at a time. A list: a reference
    need not be unique (several commands may name one order). Read as every
    query is (consistent by default; ``consistency``, ``min_position``)."""
    point = await planned(queries, read)
    page = await in_thread(queries.transfers_by_external_ref, external_ref, limit=limit,
                           cursor=cursor, point=point, listing=pages.filter(kind))
    return TransactionPage.of(page)


@router.get("/{transfer_id}", response_model=TransactionResponse, dependencies=[CAN_READ],
            responses=refusals(404))
async def get_transfer(transfer_id: UUID, queries: Queries, read: Read):
    point = await planned(queries, read)
    view = await in_thread(queries.transfer, transfer_id, point=point)
    return TransactionResponse.of(view)
