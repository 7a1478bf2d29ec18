"""The background loops' shared thread: runs, survives a failing run, stops,
and restarts."""

from __future__ import annotations

import logging
import threading

from application.ops.background import BackgroundThread, periodic
from tests.support.http import wait_until

LOG = logging.getLogger("tests.background")


def live_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_a_periodic_task_keeps_running_after_a_failing_run(caplog):
    runs: list[int] = []

    def task() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("the second run fails")

    worker = periodic("test-periodic", 0.001, task, failure="test task failed", log=LOG)
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        worker.start()
        try:
            wait_until(lambda: len(runs) >= 5, 10, "five runs")
        finally:
            worker.stop(timeout_s=5)
    failures = [r for r in caplog.records if r.getMessage() == "test task failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert live_threads("test-periodic") == []


def test_stop_ends_the_loop_and_start_runs_it_again():
    entered = threading.Semaphore(0)

    def loop() -> None:
        entered.release()
        worker.stopping.wait()

    worker = BackgroundThread("test-loop", loop)
    worker.start()
    worker.start()  # a second start while it runs starts nothing more
    assert entered.acquire(timeout=10)
    assert len(live_threads("test-loop")) == 1
    worker.stop(timeout_s=5)
    assert live_threads("test-loop") == [] and worker.stopping.is_set()

    worker.start()
    assert entered.acquire(timeout=10) and not worker.stopping.is_set()
    worker.stop(timeout_s=5)
    assert live_threads("test-loop") == []
