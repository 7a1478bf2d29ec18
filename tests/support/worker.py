"""A separate ledger process for concurrency and crash tests.

Run as ``python -m tests.support.worker CONFIG_JSON``. It starts its own
writer on the given store and, from several threads, issues transfers
between the given accounts and fees into the treasury. Each acknowledged
command's id is appended to the output file (flushed line by line) only
after the writer answered, so the file is exactly what a client saw
confirmed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from pathlib import Path
from uuid import UUID, uuid4

from application import commands as c
from domain.errors import LedgerError
from tests.support.ledgers import LedgerHarness


def issue_commands(ledger: LedgerHarness, accounts: list[UUID], count: int, seed: int,
                   record) -> None:
    rng = random.Random(seed)  # noqa: S311
    for _ in range(count):
        if rng.random() < 0.5:
            command = c.ChargeFee(uuid4(), rng.choice(accounts), "notification")
        else:
            source, destination = rng.sample(accounts, 2)
            command = c.TransferFunds(uuid4(), source, destination, rng.randint(1, 10**7))
        try:
            ledger.execute(command)
        except LedgerError as error:
            record(f"refused {command.command_id} {error.code}")
        else:
            record(f"ok {command.command_id}")


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    ledger = LedgerHarness(config["env"], genesis=False)
    accounts = [UUID(a) for a in config["accounts"]]
    lock = threading.Lock()
    with open(config["output"], "a", buffering=1) as output:
        def record(line: str) -> None:
            with lock:
                output.write(line + "\n")

        threads = [
            threading.Thread(target=issue_commands, args=(
                ledger, accounts, config["count"], config["seed"] * 100 + n, record))
            for n in range(config["threads"])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ledger.close()


if __name__ == "__main__":
    main(sys.argv[1])
