"""``deals-ledger replay``: audit the read models against the event log.

Replays the log (all of it, or up to ``--until-position`` / ``--until``)
into fresh state, compares it with every read model and the Redis cache,
checks conservation and the hash chain over the stored events, and prints
the report. ``--rebuild`` first empties the read models and projects the
whole log again (stop other projectors first). Exit status: 0 clean, 4 when
anything disagrees (exit_codes). The same code answers ``POST /v1/audit/replay``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from application.eventlog.seal_check import UnauthenticatedEvent
from application.settlement.anchor_audit import AnchorAudit, run_anchor_audit
from application.write.event_store import LedgerApplication
from domain.amounts import format_amount
from domain.rfc3339 import parse_time
from interface.cli import exit_codes
from interface.cli.progress_bars import Progress
from interface.http.schemas.responses import AnchorAuditItem, ReplayResponse
from interface.wiring.seal_keys import open_ledger
from interface.wiring.settings import Settings
from projections.queries import ReplayReport
from projections.runtime import ReadSide


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rebuild", action="store_true",
                        help="drop and rebuild the read models from position 0 first")
    parser.add_argument("--until-position", type=position, default=None, metavar="N",
                        help="replay the log up to this position, rounded down to the last "
                             "commit that ends at or before it")
    parser.add_argument("--until", default=None, metavar="TIME",
                        help="replay events stamped at or before this RFC 3339 time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


HELD_BY_SETTLER = ("the embedded chain is held by a running settler (stop it, or use "
                   "DEALS_SOLANA_RPC_URL)")


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay the event log and compare it with the read models."""
    until = None if args.until is None else parse_time(args.until, "--until")
    app = open_ledger(settings, auditing=True)  # reads; never begins sealing
    read_side = ReadSide(app, settings.eventsourcing_env(), redis_url=settings.redis_url,
                         redis_prefix=settings.redis_prefix)
    try:
        head = read_side.log.head()
        # an unauthenticated event stops the models before it; the replay names it
        with contextlib.suppress(UnauthenticatedEvent):
            _bring_models_up(read_side, head, rebuild=args.rebuild)
        progress = Progress("replay", min(args.until_position or head, head))
        report = read_side.queries.audit_replay(
            until_position=args.until_position, until=until, progress_line=progress)
        progress.done()
        anchors = _audit_anchors(settings, app)
    finally:
        read_side.close()
        app.close()
    _print(report, as_json=args.json, anchors=anchors)
    clean = report.supply_ok and not report.mismatches and report.first_tampered_position is None
    return exit_codes.OK if clean and (anchors is None or not anchors.findings) else exit_codes.FINDINGS


def _bring_models_up(read_side: ReadSide, head: int, *, rebuild: bool) -> None:
    projector = read_side.projector
    if rebuild:
        progress = Progress("rebuild", head)
        projector.rebuild(progress_line=progress)
        progress.done()
    elif projector.lock.try_acquire():
        try:
            projector.catch_up()  # nobody else projects: bring the models up to date
        finally:
            projector.lock.release()


def position(text: str) -> int:
    """A log position on the command line: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; positions start at 0")
    return value


def _audit_anchors(settings: Settings, app: LedgerApplication) -> AnchorAuditItem:
    """The recomputed log against every anchor on chain (docs/proofs.md). The
    embedded chain belongs to the settler: checked only when no settler holds
    it (unchecked, with a note saying so, otherwise)."""
    from application.eventlog.decoder import EventDecoder
    from interface.wiring.leaf_witness import leaf_witness
    from interface.wiring.settler import lease_for, open_chain

    lease = None if settings.solana_rpc_url else lease_for(app.recorder)
    if lease is not None and not lease.try_acquire():
        return AnchorAuditItem.unchecked(HELD_BY_SETTLER)

    async def audit() -> AnchorAudit:
        chain = open_chain(settings)
        try:
            return await run_anchor_audit(app.event_log, EventDecoder(app.mapper), chain,
                                          leaf_witness(settings.data_dir))
        finally:
            await chain.close()

    try:
        return AnchorAuditItem.of(asyncio.run(audit()))
    finally:
        if lease is not None:
            lease.release()


def _print(report: ReplayReport, *, as_json: bool, anchors: AnchorAuditItem | None) -> None:
    """The text report, or (``--json``) exactly what ``POST /v1/audit/replay``
    answers: one shape for both (amounts as DEAL decimal strings)."""
    if as_json:
        print(ReplayResponse.of(report, anchors).model_dump_json(indent=2))
        return
    if anchors is not None and not anchors.checked:
        print(f"anchors           not checked: {anchors.note}")
    elif anchors is not None:
        print(f"anchors           {anchors.anchors_checked} on chain, "
              f"{len(anchors.findings)} findings")
        for finding in anchors.findings[:50]:
            print(f"  anchor {finding.sequence} {finding.kind}: {finding.detail}")
    print(f"events replayed   {report.events_replayed:,} (to position {report.last_position})")
    print(f"state at          position {report.position} (the last whole commit asked for)")
    print(f"accounts          {report.accounts:,}")
    print(f"supply            {format_amount(report.supply)} DEAL "
          f"({'conserved' if report.supply_ok else 'NOT CONSERVED'})")
    if report.first_tampered_position is not None:
        print(f"event log         TAMPERED at position {report.first_tampered_position}")
    print(f"mismatches        {len(report.mismatches)}")
    for mismatch in report.mismatches[:50]:
        print(f"  {mismatch.model} {mismatch.key}: expected {mismatch.expected}, "
              f"found {mismatch.actual}")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a bad --until before any store is looked at."""
    if args.until is not None:
        parse_time(args.until, "--until")


run_replay.add_arguments = add_arguments  # type: ignore[attr-defined]
run_replay.check_arguments = check_arguments  # type: ignore[attr-defined]
