"""``deals-ledger project`` as a separate worker process: killed with
SIGKILL in the middle of the stream and started again, it leaves read models
equal to a fresh rebuild."""

from __future__ import annotations

import signal
from uuid import uuid4

import pytest

from application import commands as c
from application.authority import INTERNAL
from projections.runtime import ReadSide
from tests.interface.cli_support import cli, spawn, wait_ready
from tests.projections.conftest import dump


def write_transfers(ledger, source, destination, count: int, per_commit_max: int = 5) -> int:
    """``count`` transfers in many small group commits (a projector's page
    ends where a commit ends, so a page of 7 events needs commits that small)."""
    last = 0
    for start in range(0, count, per_commit_max):
        futures = [
            ledger.writer.send(c.TransferFunds(uuid4(), source, destination, 1, "load"),
                                 authority=INTERNAL)
            for _ in range(min(per_commit_max, count - start))
        ]
        last = max(last, *(future.result(60).position for future in futures))
    return last


@pytest.mark.slow
def test_a_worker_killed_mid_stream_resumes_to_what_a_rebuild_gives(service_ledger, store):
    ledger = service_ledger
    source, destination = ledger.open_account(100_000), ledger.open_account()
    write_transfers(ledger, source, destination, 500)
    head = ledger.app.event_log.head()
    worker = spawn(store, "project", "--page-events", "7", "--poll-interval-s", "0.01")
    side = ReadSide(ledger.app, store.env, clock=ledger.clock)
    try:
        assert side.queries.wait_for(head // 2, timeout_s=60), worker.stderr
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = side.queries.position()
        assert head // 2 <= killed_at < head  # it really died mid-stream
        last = write_transfers(ledger, source, destination, 100)
        finished = cli(store, "project", "--once")
        assert finished.returncode == 0, finished.stderr
        assert side.queries.position() == last
        resumed = dump(side.store)
        side.projector.rebuild()
        assert dump(side.store) == resumed
        assert side.queries.balance(destination).balance == 600
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        side.close()


def test_two_project_workers_share_the_work_without_applying_twice(service_ledger, store):
    ledger = service_ledger
    source, destination = ledger.open_account(100_000), ledger.open_account()
    workers = [spawn(store, "project", "--poll-interval-s", "0.01") for _ in range(2)]
    side = ReadSide(ledger.app, store.env, clock=ledger.clock)
    try:
        for worker in workers:
            wait_ready(worker)
        last = write_transfers(ledger, source, destination, 300)
        assert side.queries.wait_for(last, timeout_s=60)
        assert side.queries.balance(destination).balance == 300
        report = side.queries.audit_replay()
        assert report.mismatches == [] and report.supply_ok
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            assert worker.wait(20) == 0
        side.close()
