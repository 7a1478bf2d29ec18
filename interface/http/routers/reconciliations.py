"""Reconciliation of the chain against the log (admin): run one now, read
the latest report, and resolve a finding with the movement that references
it. Runs block on the chain, so they go off the event loop. A report
answers the log's head read after it, as ``position``: a run records its
findings in the log, and a client reads them back with it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from application import commands as c
from application.errors import ReconciliationNotFound
from interface.http.deps import IS_ADMIN, AdminCommand, IdempotencyKey, Ledger, Sending, in_thread
from interface.http.idempotency import check_key
from interface.http.json_body import JsonRoute
from interface.http.routers import REPLAYED, refusals, replay_aware
from interface.http.schemas.listing import Cursor
from interface.http.schemas.reconciliations import (
    DEPOSIT_FINDINGS_MAX,
    AdjustRequest,
    AssignRequest,
    DepositFindingsResponse,
    ReconcileRequest,
    ReconciliationResponse,
)
from interface.http.schemas.responses import MovementResponse

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliation"], route_class=JsonRoute)


@router.post(
    "", status_code=201, response_model=ReconciliationResponse, dependencies=[IS_ADMIN],
    description="Run one reconciliation now and answer its report. Nothing is corrected; "
                "each finding is recorded in the log. 503 while the chain is unreachable "
                "or (embedded chain) another process's settler holds it.",
)
async def reconcile(ledger: Ledger, key: IdempotencyKey, body: ReconcileRequest | None = None):
    check_key(key, None, None, what="a reconciliation run (each run is a new one)")
    full = body.full if body is not None else False
    report = await in_thread(ledger.run_reconciliation, full=full)
    return ReconciliationResponse.of(report, await in_thread(ledger.store_position))


@router.get("/latest", response_model=ReconciliationResponse, dependencies=[IS_ADMIN],
            responses=refusals(404))
async def get_latest_reconciliation(ledger: Ledger):
    report = await in_thread(ledger.latest_reconciliation)
    if report is None:
        raise ReconciliationNotFound("no reconciliation has finished yet")
    return ReconciliationResponse.of(report, await in_thread(ledger.store_position))


@router.post(
    "/findings/{finding_id}/adjust", status_code=201, response_model=MovementResponse,
    responses={200: REPLAYED, **refusals(402, 404, 409, 423)},
    description="Post the movement that resolves a finding: for a balance_mismatch a mint or "
                "burn against the issuance account (already true on chain, never settled "
                "again) naming the finding; for an uncompensated_failure the compensating "
                "reversal. Once per finding; 409 finding_not_adjustable for other kinds, a "
                "finding made stale by later settlements, or a balance mismatch of an account "
                "with unassigned deposits (assign them first) or deposits the deposit scan has "
                "not taken yet (retry after the scan).",
)
async def adjust_finding(
    finding_id: UUID, sent: AdminCommand, response: Response, body: AdjustRequest | None = None,
):
    check_key(sent.key, "finding_id", finding_id)
    reason = body.reason if body is not None else ""
    moved = await in_thread(sent.ledger.adjust_for_finding, finding_id, sent.caller, reason)
    return MovementResponse.of(replay_aware(response, moved))


@router.get(
    "/deposits", response_model=DepositFindingsResponse, dependencies=[IS_ADMIN],
    responses=refusals(422),
    description="Deposits the settler found and did not credit (unassigned_deposit findings: "
                "DEAL sent into a deposit address from a token account no wallet connected to "
                "the account owns, or that the ledger refused), oldest first, a page of at most "
                "`limit` at a time (next_cursor asks for the next; 422 for a cursor of another "
                "listing); a resolved one names its credit in adjusted_by.",
)
async def list_deposit_findings(
    ledger: Ledger, cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=DEPOSIT_FINDINGS_MAX)] = 100,
):
    page = await in_thread(ledger.deposit_findings, limit, cursor)
    return DepositFindingsResponse.of(page, await in_thread(ledger.store_position))


@router.post(
    "/findings/{finding_id}/assign", status_code=201, response_model=MovementResponse,
    responses={200: REPLAYED, **refusals(404, 409, 423)},
    description="Credit an unassigned deposit to the account whose deposit address received "
                "it: a deposit movement from the external account, settled by the deposit's "
                "own transaction. Once per deposit, however it is credited (the scan, once "
                "the wallet is connected, or this); 409 finding_not_adjustable for other kinds; "
                "409 idempotency_conflict for an assignment again with another request. "
                "One a system account received (its custody address: no user deposits there) "
                "goes on to the user account `account_id` names: answered as the transfer "
                "from the system account, settled on chain like any transfer.",
)
async def assign_deposit(
    finding_id: UUID, sent: AdminCommand, response: Response, body: AssignRequest | None = None,
):
    body = body or AssignRequest()
    return await _resolve_deposit(
        c.AssignDeposit(finding_id, body.reason, body.account_id), sent, response)


@router.post(
    "/findings/{finding_id}/return", status_code=201, response_model=MovementResponse,
    responses={200: REPLAYED, **refusals(404, 409, 423)},
    description="Send an unassigned deposit back to the wallet that owns the token account it "
                "came from: the deposit is credited (settled by its own transaction, the id an "
                "assignment would take) and a withdrawal of the same amount to that wallet's "
                "associated token account is recorded at once, answered here and settled like "
                "any withdrawal. Once per deposit, either way: 409 finding_not_adjustable once it "
                "is credited or assigned, for other kinds, or when the chain named no one owner; "
                "423 while the account is frozen. A return the chain refuses is compensated, "
                "credit and all, and reopens the finding; the next resolution is a new movement.",
)
async def return_deposit(
    finding_id: UUID, sent: AdminCommand, response: Response, body: AdjustRequest | None = None,
):
    reason = body.reason if body is not None else ""
    return await _resolve_deposit(c.ReturnDeposit(finding_id, reason), sent, response)


async def _resolve_deposit(
    command: c.AssignDeposit | c.ReturnDeposit, sent: Sending, response: Response,
) -> MovementResponse:
    """Both resolutions of a deposit: idempotent by the finding, with an
    optional reason, answering the movement that resolved it."""
    check_key(sent.key, "finding_id", command.finding_id)
    moved = await sent.ledger.execute(command, sent.caller)
    return MovementResponse.of(replay_aware(response, moved))
