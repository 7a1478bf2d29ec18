"""The projector applies every event exactly once: across crashes at any
point of a page, with several workers, and through a rebuild."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import pytest

from application import commands as c
from application.eventlog.locks import OneHolderLock
from application.eventlog.tracking import TrackingConflict
from projections.projector import PageReport, Projector
from projections.queries import Consistency, ReadModelBehind
from projections.read_model_store import open_store
from projections.runtime import ReadSide
from tests.projections.conftest import dump


class Crash(Exception):
    pass


def raise_crash() -> None:
    raise Crash("injected")


def some_history(ledger, transfers: int = 30):
    source, destination = ledger.open_account(10_000), ledger.open_account()
    for _ in range(transfers):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 7, "x"))
    return source, destination


def history_count(store) -> int:
    with store.read() as cursor:
        cursor.execute(store.sql("SELECT COUNT(*) FROM {balance_history}"))
        return cursor.fetchone()[0]


def assert_clean(read_side) -> None:
    report = read_side.queries.audit_replay()
    assert report.mismatches == [] and report.supply_ok


def test_a_crash_before_commit_applies_nothing_and_the_restart_applies_once(ledger, read_side):
    source, destination = some_history(ledger)
    projector = read_side.projector
    projector.page_events = 25
    projector.catch_up()
    before = dump(read_side.store)
    position = read_side.store.position()
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 5, "after"))
    projector.before_commit = raise_crash
    with pytest.raises(Crash):
        projector.run_once()
    assert read_side.store.position() == position
    assert dump(read_side.store) == before
    projector.before_commit = None
    projector.catch_up()
    assert read_side.queries.balance(destination).balance == 30 * 7 + 5
    assert_clean(read_side)


def test_a_crash_after_commit_is_not_applied_again_by_a_new_projector(ledger, read_side, store):
    _, destination = some_history(ledger)
    projector = read_side.projector
    projector.after_commit = raise_crash
    with pytest.raises(Crash):
        projector.run_once()
    projector.stop()  # as if the process died: lock released, memory gone
    rows = history_count(read_side.store)
    other = ReadSide(ledger.app, store.env, clock=ledger.clock)
    try:
        other.projector.catch_up()
        assert history_count(other.store) == rows  # the whole log fit in the first page
        assert other.queries.balance(destination).balance == 30 * 7
        assert_clean(other)
    finally:
        other.close()


class AlwaysGranted(OneHolderLock):
    """No mutual exclusion at all: only the tracking compare-and-set is left."""

    def try_acquire(self) -> bool:
        return True

    @property
    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def test_without_the_lock_the_tracking_compare_and_set_stops_a_second_application(
    ledger, read_side, store
):
    """Both projectors read position 0 and fold the same page; the first
    commits; the second's commit must fail and leave nothing behind."""
    some_history(ledger)
    second_store = open_store(store.env)
    first = read_side.projector
    second = Projector(read_side.log, read_side.decoder, second_store)
    first.lock = second.lock = AlwaysGranted()
    first_inside, release_first, second_folded = (threading.Event() for _ in range(3))

    def hold_first_open() -> None:
        first_inside.set()
        release_first.wait(10)

    def write_after_signal(*args, **kwargs):
        second_folded.set()
        return second_store.__class__.write_page(second_store, *args, **kwargs)

    first.before_commit = hold_first_open
    second_store.write_page = write_after_signal
    outcomes: dict[str, object] = {}

    def run(name: str, projector: Projector) -> None:
        try:
            outcomes[name] = projector.run_once()
        except Exception as error:
            outcomes[name] = error

    threads = [threading.Thread(target=run, args=("first", first))]
    threads[0].start()
    try:
        assert first_inside.wait(10)
        threads.append(threading.Thread(target=run, args=("second", second)))
        threads[1].start()
        assert second_folded.wait(10)  # it read position 0 too, and folded the page
        release_first.set()
        for thread in threads:
            thread.join(30)
        assert outcomes["first"].events > 0
        assert isinstance(outcomes["second"], TrackingConflict)
        first.before_commit = None
        first.catch_up()
        assert_clean(read_side)
    finally:
        release_first.set()
        second_store.close()


def test_two_workers_on_one_store_never_apply_an_event_twice(ledger, read_side, store):
    other = ReadSide(ledger.app, store.env, clock=ledger.clock, poll_interval_s=0.01)
    read_side.projector.poll_interval_s = 0.01
    try:
        read_side.start()
        other.start()
        source, destination = ledger.open_account(100_000), ledger.open_account()
        for _ in range(150):
            ledger.execute(c.TransferFunds(uuid4(), source, destination, 3, "x"))
        head = ledger.app.event_log.head()
        assert read_side.queries.wait_for(head, timeout_s=30)
        assert [read_side.projector.active, other.projector.active].count(True) == 1
        read_side.stop()  # the active one may go away: the other takes over
        other.stop()
        other.start()
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 3, "x"))
        assert other.queries.wait_for(ledger.app.event_log.head(), timeout_s=30)
        assert other.queries.balance(destination).balance == 151 * 3
        assert_clean(other)
    finally:
        other.close()


def test_a_rebuild_equals_the_live_read_models(ledger, read_side):
    source, destination = some_history(ledger)
    hold = uuid4()
    ledger.execute(c.PlaceHold(hold, source, amount=100, expires_in_s=60))
    ledger.execute(c.CaptureHold(hold, 40))
    ledger.execute(c.SetPriceRule("search", 3))
    read_side.projector.catch_up()
    live = dump(read_side.store)
    read_side.projector.page_events = 17  # other page boundaries, same result
    read_side.projector.rebuild()
    assert dump(read_side.store) == live
    assert_clean(read_side)


def test_a_query_naming_min_position_waits_for_the_projector(ledger, read_side):
    _, destination = some_history(ledger, transfers=1)
    read_side.projector.poll_interval_s = 60  # only the writer's wake-up can be quick
    ledger.writer.add_observer(read_side.on_batch)
    read_side.start()
    outcome = ledger.execute(c.TransferFunds(uuid4(), ledger.open_account(50), destination, 9))
    started = time.monotonic()
    view = read_side.queries.balance(destination, min_position=outcome.position)
    assert view.balance == 7 + 9
    assert time.monotonic() - started < 5


def test_a_query_naming_a_position_not_reached_times_out_with_read_model_behind(
    ledger, read_side
):
    _, destination = some_history(ledger, transfers=1)
    read_side.projector.catch_up()
    late = ledger.execute(c.TransferFunds(uuid4(), ledger.open_account(50), destination, 9))
    with pytest.raises(ReadModelBehind):
        read_side.queries.balance(destination, min_position=late.position)
    with pytest.raises(ReadModelBehind):  # consistent by default: the head is past it
        read_side.queries.balance(destination)
    # an eventual read answers from the (older) read model, and says how old
    older = read_side.queries.balance(destination, consistency=Consistency.EVENTUAL)
    assert (older.balance, older.position) == (7, read_side.queries.position())
    assert older.position < late.position


def test_a_waiting_query_is_released_by_a_projector_in_another_thread(ledger, read_side):
    _, destination = some_history(ledger, transfers=1)
    late = ledger.execute(c.TransferFunds(uuid4(), ledger.open_account(50), destination, 9))
    read_side.queries.wait_s_max = 10
    answers = []
    waiter = threading.Thread(
        target=lambda: answers.append(read_side.queries.balance(destination,
                                                                 min_position=late.position)))
    waiter.start()
    read_side.projector.catch_up()
    waiter.join(10)
    assert answers and answers[0].balance == 16


def test_a_broken_invariant_stops_the_projector_loudly_and_applies_nothing(
    ledger, read_side, store, caplog
):
    """An event whose recorded balance disagrees with the projection's own
    running balance is a broken ledger rule: no page containing it commits."""
    from projections import ledger_metrics as metrics
    from projections.ledger_fold import InvariantViolation
    from tests.support.raw_events import RawEvents

    source, destination = ledger.open_account(100), ledger.open_account()
    moved = ledger.execute(c.TransferFunds(uuid4(), source, destination, 40))
    read_side.projector.catch_up()
    before = read_side.store.position()
    credit = moved.position + 2  # the next transfer's credit (debit, credit, record)
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 10))
    raw = RawEvents(ledger, store)
    state = raw.state_at(credit, ledger)
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s",
                (state.replace(b'"balance_after":50', b'"balance_after":51'), credit))
    violations = metrics.INVARIANT_VIOLATIONS.labels("read_models")._value.get()
    with pytest.raises(InvariantViolation):
        read_side.projector.run_once()
    assert read_side.store.position() == before
    assert read_side.queries.lag_events() == 3
    assert metrics.INVARIANT_VIOLATIONS.labels("read_models")._value.get() == violations + 1
    assert "balance after is 50 in the read model but 51 in the event" in caplog.text


def test_a_failing_projector_thread_backs_off_and_recovers(ledger, read_side, monkeypatch):
    """The background loop retries a failing page (tenacity: 0.1 s doubling,
    cut short by a stop), counts each failure, and carries on once it works."""
    from projections import ledger_metrics as metrics
    from tests.support.http import wait_until

    projector = read_side.projector
    errors = metrics.PROJECTION_ERRORS.labels(projector.name)
    before = errors._value.get()
    real, calls = projector.run_once, []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise RuntimeError("store hiccup")
        return real()

    monkeypatch.setattr(projector, "run_once", flaky)
    account = ledger.open_account(25)
    projector.start()
    try:
        wait_until(lambda: read_side.queries.position() >= ledger.app.event_log.head(), 30,
                   "the projector to recover")
    finally:
        projector.stop()
    assert errors._value.get() - before == 3
    gaps = [later - earlier for earlier, later in zip(calls, calls[1:4], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39, gaps  # 0.1, 0.2, 0.4
    assert read_side.queries.balance(account, consistency=Consistency.EVENTUAL).balance == 25


def test_a_page_says_how_far_the_log_head_is_past_it(ledger, read_side):
    """The projector's loop reads the next page at once only while the head
    is past the last one; at the head it waits for the writer's wake-up
    (kept if it came during the page) or the poll, instead of a read that
    finds nothing. A page cut short at a commit boundary is not the head."""
    some_history(ledger, transfers=10)
    projector = read_side.projector
    projector.page_events = 7  # pages end on whole commits (3 events a transfer)
    first = projector.run_once()
    assert first.events > 0
    assert first.behind == read_side.log.head() - first.position > 0
    while (report := projector.run_once()).events:
        last = report
    assert last.behind == 0 and last.position == read_side.log.head()
    assert report.behind is None  # no page: nothing asked


class RecordedEvent:
    """A ``threading.Event`` stand-in that records the waits asked of it."""

    def __init__(self, name: str, waits: list, *, woke: bool) -> None:
        self.name, self.waits, self.woke = name, waits, woke

    def wait(self, timeout: float) -> bool:
        self.waits.append((self.name, timeout))
        return self.woke

    def set(self) -> None:
        pass

    def is_set(self) -> bool:
        return False


@pytest.mark.parametrize("events, behind, woke, expected", [
    (0, None, True, ["wake"]),  # quiet: wait for the writer's wake (or the poll), no more
    (1000, 5000, True, []),  # catching up: the next page at once
    (5, 1000, True, []),  # a page's worth behind: at once
    (5, None, True, []),  # the head unknown: look at once
    (5, 3, True, ["pace"]),  # busy: let the next page grow
    (5, 0, True, ["wake", "pace"]),  # at the head and woken during or after the page
    (5, 0, False, ["wake"]),  # at the head, no wake: the poll
])
def test_the_next_page_waits_only_while_the_log_is_busy(
    read_side, events, behind, woke, expected
):
    """A page that found events and left fewer than a page's worth behind
    is followed by one at most ``page_interval_s`` after it started: with
    the pages' round trips shared by more commits; a log a page or more
    behind is read at once, and a quiet one waits for the writer's wake."""
    projector = read_side.projector
    waits: list = []
    projector._wake = RecordedEvent("wake", waits, woke=woke)
    projector._stopping = RecordedEvent("pace", waits, woke=False)
    started = time.monotonic()
    projector._next(PageReport(events, 10, behind), started)
    assert [name for name, _ in waits] == expected
    paced = [timeout for name, timeout in waits if name == "pace"]
    assert all(0 <= timeout <= projector.page_interval_s for timeout in paced)
