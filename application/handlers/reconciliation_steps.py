"""Reconciliation runs and findings, and the admin's adjusting movement.

Recording never corrects anything; ``adjust_for_finding`` is the one way a
finding changes balances, and only when an admin asks for it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from application import commands as c
from application.handlers.movements import record_movement, replay
from application.handlers.session import AggregateSession
from application.outcomes import MovementRecorded, ReconciliationStep
from domain.errors import FindingNotFound, InvalidRequest
from domain.movements import BURN, MINT
from domain.reconciliation import Finding, Reconciliation, record_finding
from domain.system import ISSUANCE_ID, derived_id
from domain.transfer import Transfer

ADJUSTMENT = "adjustment"


def adjustment_id(finding_id: UUID) -> UUID:
    """The id of the movement that adjusts the ledger for a finding."""
    return derived_id(ADJUSTMENT, finding_id)


def start_reconciliation(
    command: c.StartReconciliation, session: AggregateSession, now: datetime
) -> ReconciliationStep:
    existing = session.get_typed(command.reconciliation_id, Reconciliation)
    if existing is None:
        session.add(Reconciliation.start(command.reconciliation_id, now), primary=True)
    else:
        session.set_primary(existing.id)
    return ReconciliationStep(command.reconciliation_id, replayed=existing is not None)


def record_findings(
    command: c.RecordFindings, session: AggregateSession, now: datetime
) -> ReconciliationStep:
    run = _open_run(command.reconciliation_id, session)
    recorded = 0
    for spec in command.findings:
        if session.get_typed(spec.finding_id, Finding) is not None:
            continue
        session.add(record_finding(
            spec.finding_id, run.id, spec.kind, now, account_id=spec.account_id,
            signature=spec.signature, transfer_id=spec.transfer_id, expected=spec.expected,
            actual=spec.actual, detail=spec.detail[: c.REASON_LENGTH_MAX], source=spec.source,
            source_owner=spec.source_owner, slot=spec.slot,
        ))
        recorded += 1
    session.set_primary(None)
    return ReconciliationStep(run.id, findings_recorded=recorded, replayed=recorded == 0)


def finish_reconciliation(
    command: c.FinishReconciliation, session: AggregateSession, now: datetime
) -> ReconciliationStep:
    run = session.get_typed(command.reconciliation_id, Reconciliation)
    if run is None:
        raise InvalidRequest(f"reconciliation {command.reconciliation_id} was never started")
    session.set_primary(run.id)
    if run.finished:
        return ReconciliationStep(run.id, replayed=True)
    run.finish(
        checked_accounts=command.checked_accounts, checked_signatures=command.checked_signatures,
        mismatches=command.mismatches, unmatched_signatures=command.unmatched_signatures,
        findings_total=command.findings_total, now=now,
    )
    return ReconciliationStep(run.id)


def adjust_for_finding(
    command: c.AdjustForFinding, session: AggregateSession, now: datetime
) -> MovementRecorded:
    reason = c.check_reason(command.reason)
    finding = session.get_typed(command.finding_id, Finding)
    if finding is None:
        raise FindingNotFound(f"finding {command.finding_id} does not exist")
    if finding.adjusted_by is not None:  # where it was derived then, maybe a legacy id
        existing = session.get_typed(finding.adjusted_by, Transfer)
        if existing is not None:
            return replay(existing, command, session)
    transfer_id = adjustment_id(finding.id)
    account_id, change = finding.adjustment()
    if change == 0:
        raise InvalidRequest(f"finding {finding.id} records no difference to adjust")
    kind, source, destination = (
        (MINT, ISSUANCE_ID, account_id) if change > 0 else (BURN, account_id, ISSUANCE_ID)
    )
    text = reason or f"reconciliation adjustment for finding {finding.id}"
    outcome = record_movement(
        session, command, transfer_id=transfer_id, kind=kind,
        source_id=source, destination_id=destination, amount=abs(change), reason=text,
        now=now, settles_on_chain=False, adjusts=finding.id,
    )
    finding.mark_adjusted(transfer_id, change, now)
    session.set_primary(transfer_id)
    return outcome


def _open_run(reconciliation_id: UUID, session: AggregateSession) -> Reconciliation:
    run = session.get_typed(reconciliation_id, Reconciliation)
    if run is None:
        raise InvalidRequest(f"reconciliation {reconciliation_id} was never started")
    if run.finished:
        raise InvalidRequest(f"reconciliation {reconciliation_id} has finished")
    return run
