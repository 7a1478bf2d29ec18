"""``deals-ledger settle``: the settlement process as its own worker.

For scale-out beside the API processes (which settle in a background thread
unless DEALS_SETTLEMENT=off): any number may run; one holds the settlement
lease and works, the others stand by and take over when it stops. SIGTERM
or Ctrl-C stops it; a stop in the middle of a submission is picked up from
the log by the next settler. ``--once`` settles what is waiting (and anchors the log when as many
events as ``DEALS_ANCHOR_EVERY_EVENTS`` wait for an anchor) and exits
(refused, with a message, while another settler holds the lease).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading

from application.errors import SettlementUnavailable
from application.settlement.anchoring import AnchorProcess
from application.settlement.process import SettlementProcess
from interface.wiring.leaf_witness import leaf_witness
from interface.wiring.logs import ROLE_LOGGER
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings
from interface.wiring.settler import anchor_config, open_chain, settlement_config

STATUS_WAIT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="settle the movements waiting now, then exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the result as JSON")


def run_settle(args: argparse.Namespace, settings: Settings) -> int:
    """Mirror the ledger's movements onto the DEAL token on Solana."""
    service = LedgerService(settings)
    try:
        if args.once:
            return _settle_once(service, as_json=args.json)
        return _settle_until_stopped(service)
    finally:
        service.stop()


def _settle_until_stopped(service: LedgerService) -> int:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    service.start(settlement=True)
    worker = service.settlement
    for _ in range(int(STATUS_WAIT_S * 10)):
        if worker.active or worker.standing_by.is_set() or stopping.wait(0.1):
            break
    if worker.standing_by.is_set():
        print("another settler holds the settlement lease; standing by to take over",
              file=sys.stderr, flush=True)
    logging.getLogger(ROLE_LOGGER).info("settler running; SIGTERM stops it")
    stopping.wait()
    return 0


def _settle_once(service: LedgerService, *, as_json: bool) -> int:
    service.start(settlement=False)
    lease = service.settlement.new_lease()
    if not lease.try_acquire():
        raise SettlementUnavailable("another settler holds the settlement lease; try later")
    try:
        settled = asyncio.run(_run_until_idle(service))
    finally:
        lease.release()
    waiting = service.settlement_fold.store.backlog()
    print(json.dumps({"settlement_steps": settled, "waiting": waiting}) if as_json
          else f"settlement steps: {settled}; waiting: {waiting}")
    return 0


async def _run_until_idle(service: LedgerService) -> int:
    chain = open_chain(service.settings)
    try:
        process = SettlementProcess(
            writer=service.writer, fold=service.settlement_fold, chain=chain,
            config=settlement_config(service.settings),
        )
        await process.prepare()
        steps = await process.run_until_idle()
        anchoring = anchor_config(service.settings)
        if anchoring is not None:  # what is due by the event count (docs/proofs.md)
            steps += await AnchorProcess(
                writer=service.writer, app=service.app, chain=chain, config=anchoring,
                witness=leaf_witness(service.settings.data_dir),
            ).run_until_idle()
        return steps
    finally:
        await chain.close()


run_settle.add_arguments = add_arguments  # type: ignore[attr-defined]
