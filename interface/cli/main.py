"""The ``deals-ledger`` command line.

Each subcommand lives in its own function (or module) and is registered in
``build_parser``; failures exit non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version as package_version

from domain.amounts import format_amount
from domain.errors import LedgerError
from domain.system import EXTERNAL_ID, ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from interface.cli import exit_codes
from interface.cli.bench import run_bench
from interface.cli.custody_rotation import run_custody
from interface.cli.project import run_project
from interface.cli.reconcile import run_reconcile
from interface.cli.replay import run_replay
from interface.cli.settle import run_settle
from interface.cli.show_settings import run_settings
from interface.cli.verify_proof import run_verify_proof
from interface.wiring.data_dir import DataDirError, secure_settings_data_dir
from interface.wiring.key_checks import check_key_files
from interface.wiring.ledger_presence import (
    NoLedger,
    SchemaUnavailable,
    StoreUnreachable,
    ensure_schema,
    require_ledger,
    require_reachable_store,
)
from interface.wiring.logs import configure_logging
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings, SettingsError, unknown_variables

Runner = Callable[[argparse.Namespace, Settings], int]


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    """Create the store (and DEALS_POSTGRES_SCHEMA when the role may), the
    system accounts and the initial supply; an existing ledger is left as it is."""
    ensure_schema(settings)
    with LedgerService(settings) as service:
        supply = -service.app.account(ISSUANCE_ID).balance
    if args.json:
        print(json.dumps({"supply": format_amount(supply), "accounts": {
            "treasury": str(TREASURY_ID), "rewards": str(REWARDS_ID),
            "issuance": str(ISSUANCE_ID), "external": str(EXTERNAL_ID)}}))
        return exit_codes.OK
    print(f"ledger ready: supply {format_amount(supply)} DEAL")
    print(f"  treasury  {TREASURY_ID}\n  rewards   {REWARDS_ID}\n  issuance  {ISSUANCE_ID}\n"
          f"  external  {EXTERNAL_ID}")
    return exit_codes.OK


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


run_init.add_arguments = _init_arguments  # type: ignore[attr-defined]


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the HTTP API (shared/API.md) with uvicorn until SIGTERM or Ctrl-C.

    With DEALS_API_KEYS unset, an admin key is generated in the data dir on
    the first start and printed once. Several --workers each run their own
    command writer against the same store (prefer PostgreSQL for that: SQLite
    serialises writers through its file lock). SIGTERM stops accepting,
    finishes in-flight requests, answers every queued command, then exits.
    """
    from interface.http.server import serve

    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    ensure_schema(settings)
    check_key_files(settings, custody=True)  # the store and its keys open, before the banner
    return serve(settings, host=host, port=port, workers=args.workers)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default DEALS_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default DEALS_PORT or 8000; 0 = any free)")
    parser.add_argument("--workers", type=_positive_int, default=1,
                        help="worker processes, each with its own writer (default 1)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


run_serve.add_arguments = _serve_arguments  # type: ignore[attr-defined]

SUBCOMMANDS: dict[str, tuple[Runner, str]] = {
    "serve": (run_serve, "serve the HTTP API (uvicorn)"),
    "init": (run_init, "create the event store, the system accounts and the initial supply"),
    "project": (run_project, "run the read-model projector as its own worker process"),
    "replay": (run_replay, "audit replay of the log against the read models (--rebuild)"),
    "settle": (run_settle, "run the settlement process (mirror movements on Solana) as a worker"),
    "reconcile": (run_reconcile, "reconcile the chain against the log and print the report"),
    "custody": (run_custody, "rotate a custody power (mint-authority, owner, fee-payer) to a "
                             "new key on chain (docs/operations.md)"),
    "settings": (run_settings, "print the effective settings (environment, ./.env, defaults), "
                               "secrets redacted"),
    "verify-proof": (run_verify_proof, "check a proof file against the chain alone, without the "
                                       "ledger's database (docs/proofs.md)"),
    "bench": (run_bench, "run the performance scenarios against same-run baselines (benchmarks/)"),
}


READS_A_LEDGER = (run_project, run_replay, run_settle, run_reconcile, run_custody)
"""Commands that refuse a store without a ledger (exit_codes.NO_LEDGER)."""
READS_THE_CUSTODY_KEY = (run_replay, run_settle, run_reconcile, run_custody)
"""With ``serve`` (which checks after creating its schema): the roles that
read the custody key file, checked before they start (key_checks)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deals-ledger",
        description="The DEAL token ledger: event-sourced, exact, idempotent.",
        epilog=exit_codes.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {package_version('deals-ledger')}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (runner, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=runner.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=getattr(runner, "own_help", True),  # False: every option passes through
        )
        sub.set_defaults(runner=runner)
        add_arguments = getattr(runner, "add_arguments", None)
        if add_arguments is not None:  # a subcommand with options of its own
            add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passed_through = parser.parse_known_args(argv)
    if passed_through and getattr(args.runner, "own_help", True):
        parser.error(f"unrecognized arguments: {' '.join(passed_through)}")
    args.passed_through = passed_through
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        settings = Settings.from_env()
        configure_logging(settings, verbose=args.verbose)
        for line in unknown_variables(os.environ):
            logging.getLogger("deals_ledger.settings").warning(line)
        check_arguments = getattr(args.runner, "check_arguments", None)
        if check_arguments is not None and not _arguments_accepted(check_arguments, args):
            return exit_codes.USAGE
        _check_before_running(args.runner, settings)
        return args.runner(args, settings)
    except SettingsError as error:
        for line in str(error).splitlines():
            print(f"deals-ledger: setting refused: {line}", file=sys.stderr)
        return exit_codes.CONFIG
    except (SchemaUnavailable, DataDirError) as error:  # what the settings name is unusable
        print(f"deals-ledger: {error}", file=sys.stderr)
        return exit_codes.CONFIG
    except NoLedger as error:
        print(f"deals-ledger: {error}", file=sys.stderr)
        return exit_codes.NO_LEDGER
    except StoreUnreachable as error:  # an outage: FAILURE, so a service manager retries
        print(f"deals-ledger: {error}", file=sys.stderr)
    except LedgerError as error:
        print(f"deals-ledger: {error.code}: {error.message}", file=sys.stderr)
    except BrokenPipeError:  # `deals-ledger settings | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return exit_codes.PIPE_CLOSED
    except KeyboardInterrupt:
        print("deals-ledger: interrupted", file=sys.stderr)
    except Exception as error:  # one line, not a traceback, for an operator
        print(f"deals-ledger: {type(error).__name__}: {error}", file=sys.stderr)
    return exit_codes.FAILURE


def _check_before_running(runner: Runner, settings: Settings) -> None:
    """What every role checks before it starts, each failure one line with
    its exit status (main): the store answers, holds a ledger when the role
    only reads one, its data dir is private and its key files open."""
    if runner in (run_bench, run_settings, run_verify_proof):
        return  # bench runs servers of its own; the others touch no ledger data
    require_reachable_store(settings)  # a clear line, not the pool's timeout
    if runner in READS_A_LEDGER:
        require_ledger(settings)  # before anything could create an empty one
    secure_settings_data_dir(settings)
    if runner in READS_A_LEDGER:
        check_key_files(settings, custody=runner in READS_THE_CUSTODY_KEY,
                        auditing=runner is run_replay)


def _arguments_accepted(check_arguments: Callable[[argparse.Namespace], None],
                        args: argparse.Namespace) -> bool:
    """What the options say, checked before any store: a refused value is a
    usage error (exit 2), as argparse's own refusals are."""
    try:
        check_arguments(args)
    except LedgerError as error:
        print(f"deals-ledger: {error.code}: {error.message}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
