"""A ledger process of its own that sends a given list of hold and spend
commands, for tests that race two processes.

Run as ``python -m tests.support.racer CONFIG_JSON``. Its own writer on the
given store sends the commands from several threads (thread ``n`` takes
every ``threads``-th command) and appends one line per answer to the output
file: ``<kind> <command id> ok`` or ``<kind> <command id> <refusal code>``.
So that two racers really overlap, each creates its ``ready`` file once its
writer runs and starts sending when the ``go`` file exists.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

from application import commands as c
from domain.errors import LedgerError
from tests.support.ledgers import LedgerHarness


def command_of(spec: list) -> c.Command:
    kind, *args = spec
    if kind == "capture":
        return c.CaptureHold(UUID(args[0]))
    if kind == "void":
        return c.VoidHold(UUID(args[0]))
    transfer_id, source, destination, amount = args
    return c.TransferFunds(UUID(transfer_id), UUID(source), UUID(destination), int(amount))


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    ledger = LedgerHarness(config["env"], genesis=False)
    Path(config["ready"]).touch()
    _wait_for(Path(config["go"]))
    specs, threads_count = config["commands"], config["threads"]
    lock = threading.Lock()
    with open(config["output"], "a", buffering=1) as output:
        def send(share: list) -> None:
            for spec in share:
                try:
                    ledger.execute(command_of(spec))
                    answer = "ok"
                except LedgerError as refusal:
                    answer = refusal.code
                with lock:
                    output.write(f"{spec[0]} {spec[1]} {answer}\n")

        threads = [threading.Thread(target=send, args=(specs[n::threads_count],))
                   for n in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ledger.close()


def _wait_for(go: Path, deadline_s: float = 120.0) -> None:
    give_up = time.monotonic() + deadline_s
    while not go.exists():
        if time.monotonic() > give_up:
            raise SystemExit(f"{go} never appeared")
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1])
