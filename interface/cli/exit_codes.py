"""The exit statuses of ``deals-ledger``, one meaning each (docs/operations.md
lists them; ``deals-ledger --help`` too)."""

from __future__ import annotations

OK = 0
FAILURE = 1
"""Something went wrong that may pass: an unreachable store, a refused command."""
USAGE = 2
"""The command line itself is wrong (argparse's own status)."""
NOT_STARTED = 3
"""``serve``: the server did not start (see the log)."""
FINDINGS = 4
"""``replay``, ``reconcile`` or ``verify-proof`` ran and found something wrong."""
NO_LEDGER = 5
"""The data dir or schema holds no ledger (``replay``, ``project``, ``settle``,
``reconcile``); only ``serve`` and ``init`` create one."""

CONFIG = 78
"""A DEALS_* setting is refused (sysexits' EX_CONFIG): retrying will not help
until the setting is fixed, so a service manager should not restart on it."""

PIPE_CLOSED = 141
"""The output's reader went away (``| head``): quietly, as other Unix tools
that die of SIGPIPE (128 + 13)."""

EPILOG = f"""exit status:
  {OK}  success (a clean audit or reconciliation)
  {FAILURE}  failure: an unreachable store, a refused command
  {USAGE}  usage error on the command line
  {NOT_STARTED}  serve: the server did not start
  {FINDINGS}  replay, reconcile or verify-proof found discrepancies
  {NO_LEDGER}  no ledger in the configured data dir or schema (run init or serve first)
  {CONFIG}  a DEALS_* setting is refused (the message names it)
  {PIPE_CLOSED}  the output's reader closed the pipe early (as other Unix tools)"""
