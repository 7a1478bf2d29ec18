"""Reconciliation reports as JSON (API.md's shape), for the CLI and HTTP:
amounts as exact decimal DEAL strings, ids as UUID strings."""

from __future__ import annotations

from typing import Any

from application.settlement.reconciler import ReconciliationReport
from application.settlement.store import FindingRow
from domain.amounts import format_amount


def report_json(report: ReconciliationReport) -> dict[str, Any]:
    return {
        "reconciliation_id": str(report.reconciliation_id),
        "checked_accounts": report.checked_accounts,
        "checked_signatures": report.checked_signatures,
        "mismatches": [finding_json(finding) for finding in report.mismatches],
        "unmatched_signatures": [finding_json(finding) for finding in report.unmatched_signatures],
        "mismatch_count": report.mismatch_count,
        "unmatched_signature_count": report.unmatched_count,
        "truncated": report.truncated,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
    }


def finding_json(finding: FindingRow) -> dict[str, Any]:
    return {
        "finding_id": str(finding.finding_id),
        "kind": finding.kind,
        "account_id": _text(finding.account_id),
        "signature": finding.signature,
        "transfer_id": _text(finding.transfer_id),
        "expected": None if finding.expected is None else format_amount(finding.expected),
        "actual": None if finding.actual is None else format_amount(finding.actual),
        "detail": finding.detail,
        "adjusted_by": _text(finding.adjusted_by),
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)
