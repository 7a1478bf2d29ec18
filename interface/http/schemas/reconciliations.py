"""Reconciliation requests and answers (shared/API.md, "Audit, settlement,
operations"): the report is ``{"checked_accounts", "mismatches",
"unmatched_signatures", "finished_at"}`` plus the ``position`` every
command answers (the log's head after the run) and what an operator needs to act
on a finding (its id, kind, amounts as decimal strings)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from application.settlement.reconciler import ReconciliationReport
from application.settlement.store import FindingRow
from domain.amounts import format_amount
from domain.rfc3339 import parse_time
from interface.http.schemas.types import Reason
from projections.queries import Page


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full: StrictBool = Field(
        False, description="re-check every signature, not only those new since the last run"
    )


class AdjustRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = ""


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = ""
    account_id: UUID | None = Field(
        default=None,
        description="For a deposit a system account received: the user account it is meant "
                    "for (the system account is credited and pays it on with a transfer, "
                    "settled on chain). Otherwise absent, or the receiving account itself.")


class FindingItem(BaseModel):
    finding_id: UUID
    kind: str = Field(examples=["balance_mismatch", "unknown_signature"])
    account_id: UUID | None
    signature: str | None
    transfer_id: UUID | None
    expected: str | None = Field(description="the ledger's settled balance, in DEAL")
    actual: str | None = Field(description="the token account's balance on chain, in DEAL")
    detail: str
    adjusted_by: UUID | None

    @classmethod
    def of(cls, row: FindingRow) -> FindingItem:
        return cls(
            finding_id=row.finding_id, kind=row.kind, account_id=row.account_id,
            signature=row.signature, transfer_id=row.transfer_id,
            expected=None if row.expected is None else format_amount(row.expected),
            actual=None if row.actual is None else format_amount(row.actual),
            detail=row.detail, adjusted_by=row.adjusted_by,
        )


DEPOSIT_FINDINGS_MAX = 1000


class DepositFindingsResponse(BaseModel):
    items: list[FindingItem] = Field(description=(
        "unassigned_deposit findings, oldest first: actual is the amount deposited"))
    next_cursor: str | None
    has_more: bool = Field(description="another page follows (next_cursor asks for it)")
    position: int = Field(description="the log's head when this answer was made")

    @classmethod
    def of(cls, page: Page[FindingRow], position: int) -> DepositFindingsResponse:
        return cls(items=[FindingItem.of(row) for row in page.items],
                   next_cursor=page.next_cursor, has_more=page.has_more, position=position)


class ReconciliationResponse(BaseModel):
    reconciliation_id: UUID
    checked_accounts: int
    checked_signatures: int
    mismatches: list[FindingItem]
    unmatched_signatures: list[FindingItem]
    mismatch_count: int
    unmatched_signature_count: int
    truncated: bool = Field(description="more findings were recorded than listed here")
    started_at: datetime
    finished_at: datetime | None
    position: int = Field(description=(
        "the log's head when this answer was made: the run's findings are recorded at or "
        "before it, so a query with it as min_position reads them"))

    @classmethod
    def of(cls, report: ReconciliationReport, position: int) -> ReconciliationResponse:
        return cls(position=position,
            reconciliation_id=report.reconciliation_id,
            checked_accounts=report.checked_accounts,
            checked_signatures=report.checked_signatures,
            mismatches=[FindingItem.of(row) for row in report.mismatches],
            unmatched_signatures=[FindingItem.of(row) for row in report.unmatched_signatures],
            mismatch_count=report.mismatch_count,
            unmatched_signature_count=report.unmatched_count, truncated=report.truncated,
            started_at=parse_time(report.started_at),
            finished_at=None if report.finished_at is None else parse_time(report.finished_at),
        )
