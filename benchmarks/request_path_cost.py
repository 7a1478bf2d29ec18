"""The event loop's own CPU time per ``POST /v1/transfers``, for two
versions of the code, without the machine's other work in the figure.

    .venv/bin/python -m benchmarks.request_path_cost --tree before=/tmp/base --tree after=. \\
        [--rounds 6] [--requests 5000]

Each ``--tree LABEL=DIR`` is a checkout of the ledger. A round runs, for
every tree in turn (the order alternating), a child process that imports
that tree (``PYTHONPATH=DIR``), builds the app as ``deals-ledger serve``
does (every middleware, the routers, the error handlers) around a stand-in
service whose ``execute`` answers a fixed transfer outcome at once, and
calls it as uvicorn would (ASGI, no sockets) ``--requests`` times: the
thread's CPU time (``time.thread_time``) per request is what the request
path costs the event loop, from headers in to the answer's bytes out,
minus the writer and uvicorn's protocol. In-process and one thread, so
another process on the machine slows the round but does not enter its
figure (only cache effects do; alternating rounds share those out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

TOKEN = "bench-token"  # noqa: S105 - a stand-in key of this harness


class _Service:
    """What the transfer route uses of ``LedgerService``: ``execute``."""

    alerting = None

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    async def execute(self, command: Any, authority: Any) -> Any:
        return self.outcome

    def refuse_if_store_down(self) -> None:
        return None


def _app() -> Any:
    from application.outcomes import MovementRecorded
    from interface.http.app import create_app
    from interface.http.auth import parse_api_keys
    from interface.http.ratelimit import Unlimited
    from interface.wiring.settings import Settings

    outcome = MovementRecorded(transfer_id=uuid.uuid4(), kind="transfer", status="pending",
                               amount=12_345_678, source=uuid.uuid4(),
                               destination=uuid.uuid4(), source_balance=10**12,
                               destination_balance=10**12, position=1234)
    keys = f"bench:{TOKEN}:admin"
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="request-path-")), api_keys=keys,
                        rate_limit_per_s=0)
    app = create_app(settings, keyring=parse_api_keys(keys),
                     service=_Service(outcome))  # type: ignore[arg-type]
    app.state.rate_limiter = Unlimited()
    return app


def _scope(body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
               (b"authorization", f"Bearer {TOKEN}".encode()),
               (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/v1/transfers",
            "raw_path": b"/v1/transfers", "root_path": "", "query_string": b"",
            "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
            "state": {}}


async def _requests(app: Any, count: int) -> tuple[float, int]:
    """Thread CPU seconds per request, and the status of the last answer."""
    source, destination = str(uuid.uuid4()), str(uuid.uuid4())
    status = [0]

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    bodies = [json.dumps({"transfer_id": str(uuid.uuid4()), "from": source, "to": destination,
                          "amount": "0.12345678", "reason": "bench"}).encode()
              for _ in range(count)]
    started = time.thread_time()
    for body in bodies:
        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(_scope(body), receive, send)
    return (time.thread_time() - started) / count, status[0]


def child(count: int) -> None:
    app = _app()

    async def run() -> tuple[float, int]:
        await _requests(app, min(count, 500))  # warm-up: first-request work, caches
        return await _requests(app, count)

    per_request_s, status = asyncio.run(run())
    if status != 201:
        raise SystemExit(f"the transfer route answered {status}, not 201")
    print(json.dumps({"us": per_request_s * 1e6}))


def _round(folder: Path, count: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(folder.resolve())}
    output = subprocess.run(  # noqa: S603 - this interpreter, this file
        [sys.executable, __file__, "--child", str(count)], env=env, cwd=folder,
        capture_output=True, text=True, check=True).stdout
    return float(json.loads(output.splitlines()[-1])["us"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_path_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", metavar="LABEL=DIR")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child(options.child)
        return 0
    trees = [(label, Path(folder)) for label, _, folder in
             (spec.partition("=") for spec in options.tree or ["here=."])]
    figures: dict[str, list[float]] = {label: [] for label, _ in trees}
    for number in range(options.rounds):
        order = trees if number % 2 == 0 else list(reversed(trees))
        for label, folder in order:
            figures[label].append(_round(folder, options.requests))
        print(f"round {number + 1}: " + ", ".join(
            f"{label} {figures[label][-1]:.1f} us" for label, _ in trees)
            + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    for label, _ in trees:
        print(f"{label:>10}: median {statistics.median(figures[label]):.1f} us of event-loop CPU "
              f"per request ({options.rounds} rounds of {options.requests:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
