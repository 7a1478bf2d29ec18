"""``deals-ledger reconcile``: compare the chain with the log and print the
report (JSON). Exit status 0 when clean, 3 when there are findings.

``--latest`` prints the latest report without running; ``--adjust ID``
posts the movement that resolves a balance finding (an admin act, in the
log, referencing the finding). With the embedded chain, a reconciliation
runs in the process that settles (the service, when it is running: use
POST /v1/reconciliations there).
"""

from __future__ import annotations

import argparse
import json
from uuid import UUID

from application.authority import Authority
from domain.amounts import format_amount
from interface.http.schemas.reconciliations import ReconciliationResponse
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings

FINDINGS_EXIT_STATUS = 3
OPERATOR = Authority("the operator (deals-ledger reconcile)", admin=True)
"""Whoever runs the CLI holds the store's credentials: an admin."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true",
                        help="re-check every signature, not only those new since the last run")
    parser.add_argument("--latest", action="store_true",
                        help="print the latest report without running a reconciliation")
    parser.add_argument("--adjust", metavar="FINDING_ID", type=UUID,
                        help="post the adjusting movement for a balance finding")
    parser.add_argument("--reason", default="", help="reason recorded with --adjust")


def run_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """Reconcile the chain against the log (exit 3 when there are findings)."""
    service = LedgerService(settings).start(settlement=False)
    try:
        if args.adjust is not None:
            moved = service.adjust_for_finding(args.adjust, OPERATOR, args.reason)
            print(json.dumps({
                "transfer_id": str(moved.transfer_id), "kind": moved.kind,
                "amount": format_amount(moved.amount), "position": moved.position,
            }))
            return 0
        report = service.latest_reconciliation() if args.latest else (
            service.run_reconciliation(full=args.full)
        )
        if report is None:
            print(json.dumps(None))
            return 0
        print(json.dumps(ReconciliationResponse.of(report).model_dump(mode="json"), indent=2))
        return 0 if report.clean else FINDINGS_EXIT_STATUS
    finally:
        service.stop()


run_reconcile.add_arguments = add_arguments  # type: ignore[attr-defined]
