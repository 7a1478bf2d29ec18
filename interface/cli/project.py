"""``deals-ledger project``: run the read-model projector as its own process.

For scale-out next to the API processes (which run one in a background
thread too): any number may run; one holds the projection lock and works,
the others stand by and take over if it stops. SIGTERM or Ctrl-C stops it
after the page in hand, which is committed whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from interface.cli.progress_bars import Progress
from interface.wiring.alerting import alert_refused_page
from interface.wiring.logs import ROLE_LOGGER
from interface.wiring.seal_keys import open_ledger
from interface.wiring.settings import Settings
from projections.projector import POLL_INTERVAL_S_DEFAULT, PROJECTOR_PAGE_EVENTS_DEFAULT
from projections.runtime import ReadSide, lost_timeline_policy

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="catch up with the log, then exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the result as JSON")
    parser.add_argument("--page-events", type=int, default=PROJECTOR_PAGE_EVENTS_DEFAULT,
                        help="events applied per transaction (default %(default)s)")
    parser.add_argument("--poll-interval-s", type=float, default=POLL_INTERVAL_S_DEFAULT,
                        help="how often to look for new events (default %(default)s)")


def run_project(args: argparse.Namespace, settings: Settings) -> int:
    """Follow the event log and keep the read models (and Redis cache) current."""
    stopping = threading.Event()
    if not args.once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    app = open_ledger(settings)
    read_side = ReadSide(app, settings.eventsourcing_env(), redis_url=settings.redis_url,
                         redis_prefix=settings.redis_prefix,
                         page_events=args.page_events, poll_interval_s=args.poll_interval_s,
                         on_lost_timeline=lost_timeline_policy(
                             settings.rebuild_restored_read_models))
    read_side.projector.on_refused = alert_refused_page
    try:
        if args.once:
            progress = Progress("project", read_side.log.head())
            applied = read_side.projector.catch_up(progress_line=progress)
            progress.done()
            at = read_side.queries.position()
            print(json.dumps({"applied_events": applied, "position": at}) if args.json
                  else f"applied {applied} events; read models at position {at}")
            return 0
        read_side.start()
        logging.getLogger(ROLE_LOGGER).info("projector running; SIGTERM stops it")
        stopping.wait()
        return 0
    finally:
        read_side.close()
        app.close()


run_project.add_arguments = add_arguments  # type: ignore[attr-defined]
