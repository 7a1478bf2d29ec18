"""``deals-ledger reconcile``: compare the chain with the log and print the
report (text, or the API's JSON with ``--json``). Exit status 0 when clean,
4 when there are findings (exit_codes).

``--latest`` prints the latest report without running; ``--adjust ID``
posts the movement that resolves a balance finding (an admin act, in the
log, referencing the finding). With the embedded chain, a reconciliation
runs in the process that settles (the service, when it is running: use
POST /v1/reconciliations there).
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from uuid import UUID

from application.authority import Authority
from domain.amounts import format_amount
from domain.provenance import OPERATOR_CLI, Provenance
from interface.cli import exit_codes
from interface.cli.progress_bars import Progress
from interface.http.schemas.reconciliations import ReconciliationResponse
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings

FINDINGS_EXIT_STATUS = exit_codes.FINDINGS
OPERATOR = Authority("the operator (deals-ledger reconcile)", admin=True,
                     provenance=Provenance(OPERATOR_CLI))
"""Whoever runs the CLI holds the store's credentials: an admin."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true",
                        help="re-check every signature, not only those new since the last run")
    parser.add_argument("--latest", action="store_true",
                        help="print the latest report without running a reconciliation")
    parser.add_argument("--adjust", metavar="FINDING_ID", type=UUID,
                        help="post the adjusting movement for a balance finding")
    parser.add_argument("--reason", default="", help="reason recorded with --adjust")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (the API's shape)")


def run_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """Reconcile the chain against the log (exit 4 when there are findings)."""
    service = LedgerService(settings).start(settlement=False)
    try:
        if args.adjust is not None:
            moved = service.adjust_for_finding(args.adjust, OPERATOR, args.reason)
            _show({"transfer_id": str(moved.transfer_id), "kind": moved.kind,
                   "amount": format_amount(moved.amount), "position": moved.position},
                  as_json=args.json)
            return 0
        if args.latest:
            report = service.latest_reconciliation()
        else:
            progress = Progress("reconcile", None, unit="accounts")
            report = service.run_reconciliation(full=args.full, progress=progress)
            progress.done()
        if report is None:
            print(json.dumps(None) if args.json else "no reconciliation has run yet")
            return 0
        _show(ReconciliationResponse.of(report, service.store_position()).model_dump(mode="json"),
              as_json=args.json)
        return 0 if report.clean else FINDINGS_EXIT_STATUS
    finally:
        service.stop()


def _show(document: dict[str, Any], *, as_json: bool) -> None:
    """JSON as the API answers it, or one ``name value`` line per field with
    each finding on a line of its own."""
    if as_json:
        print(json.dumps(document, indent=2))
        return
    for name, value in document.items():
        if isinstance(value, list):
            print(f"{name:<26}{len(value)}")
            for item in value:
                print("  " + " ".join(f"{k}={_text(v)}" for k, v in item.items()
                                      if v is not None))
        else:
            print(f"{name:<26}{_text(value)}")


def _text(value: Any) -> str:
    """A value as the text reports write it: yes/no for a flag, never
    Python's True/False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


run_reconcile.add_arguments = add_arguments  # type: ignore[attr-defined]
