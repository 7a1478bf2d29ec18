"""One caller's bad atomic batches must not starve the others' commands.

The attack (issue 13): one large batch, then dozens of atomic batches that
each hold one refused item, while unrelated transfers run. Each refused
atomic batch used to re-decide its whole group and spend the group's retry
budget (30 attempts, the writer turn after two), so the unrelated transfers
answered 503 "the event store stayed contended" while the store was
healthy. These tests hold the writer inside a first group while the attack
and its victims are sent, so all of them meet in one group, and assert on
statuses and counts only, never on time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import wait
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from application import commands as c
from application.authority import INTERNAL
from application.errors import LedgerUnavailable
from application.eventlog.locks import advisory_lock_key
from application.handlers.movements import BatchAborted
from application.outcomes import BatchRecorded, MovementRecorded
from application.write import processor as processor_module
from application.write.attempts import LOST_COMMIT, REFUSED_MIDWAY, GroupAttempts
from tests.support.ledgers import LedgerHarness
from tests.support.services import pg_connect
from tests.support.writer_counts import WriterCounts

BIG_BATCH_ITEMS = 6000
BAD_ATOMIC_BATCHES = 50
"""More than the 30 attempts one group used to have for all of them."""
VICTIMS = 20
ANSWER_WAIT_S = 300  # generous: a busy 2-core machine, never a latency bound


class Gate:
    """Holds the writer inside its next group until opened, so every command
    sent meanwhile waits and the next group takes them all together."""

    def __init__(self, ledger: LedgerHarness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()
        process_group = ledger.processor.process_group

        def gated(commands, spent=None, **kwargs):
            if not self.opened.is_set():
                self.entered.set()
                assert self.opened.wait(ANSWER_WAIT_S)
            return process_group(commands, spent, **kwargs)

        monkeypatch.setattr(ledger.processor, "process_group", gated)
        self.first = ledger.writer.send(c.OpenAccount(uuid4()), authority=INTERNAL)
        assert self.entered.wait(ANSWER_WAIT_S), "the writer took the gate's command"

    def open(self) -> None:
        self.opened.set()
        self.first.result(ANSWER_WAIT_S)


def transfer(source, destination, amount=1) -> c.TransferFunds:
    return c.TransferFunds(uuid4(), source, destination, amount, "fairness")


@pytest.fixture
def accounts(ledger) -> Iterator[dict]:
    yield {
        "rich": [ledger.open_account(10**12) for _ in range(4)],
        "poor": ledger.open_account(0),
        "victims": [ledger.open_account(10**9) for _ in range(4)],
    }


def bad_atomic_batch(accounts) -> c.TransferBatch:
    """Its first item moves money, its second is refused (no funds), so the
    batch fails after changing balances."""
    rich, poor = accounts["rich"], accounts["poor"]
    return c.TransferBatch((transfer(rich[0], rich[1]), transfer(poor, rich[2], 5)), atomic=True)


def good_atomic_batch(accounts) -> c.TransferBatch:
    rich = accounts["rich"]
    return c.TransferBatch((transfer(rich[0], rich[1]), transfer(rich[3], rich[2])), atomic=True)


def send_the_attack(ledger, accounts, *, good_first: bool):
    """The large batch, a legitimate atomic batch if ``good_first``, the bad
    atomic batches and the victims' transfers, in that order."""
    rich, victims = accounts["rich"], accounts["victims"]
    big = c.TransferBatch(tuple(transfer(rich[i % 2], rich[2 + i % 2])
                                for i in range(BIG_BATCH_ITEMS)))
    send = ledger.writer.send
    big_future = send(big, authority=INTERNAL)
    good = [send(good_atomic_batch(accounts), authority=INTERNAL)] if good_first else []
    bad = [send(bad_atomic_batch(accounts), authority=INTERNAL)
           for _ in range(BAD_ATOMIC_BATCHES)]
    innocent = [send(transfer(victims[i % 2], victims[2 + i % 2]), authority=INTERNAL)
                for i in range(VICTIMS)]
    return big_future, good, bad, innocent


@pytest.mark.parametrize("good_first", [False, True], ids=["bad_only", "a_good_one_first"])
def test_bad_atomic_batches_cost_others_at_most_one_redecide_and_no_503(
        ledger, accounts, monkeypatch, good_first):
    """All of them meet in one group. The writer decides atomic batches
    first there: bad ones with nothing decided before them cost nothing and
    the others go on without them. A legitimate atomic batch decided before
    the first bad one costs one re-decide; the later bad ones are then sent
    on, and in the next group, first again, each fails alone for free."""
    victims = accounts["victims"]
    balances_before = [ledger.balance(a) for a in victims]
    gate = Gate(ledger, monkeypatch)
    conflicts_before, counts = ledger.processor.conflicts, WriterCounts()
    loads = count_loads(ledger, monkeypatch)
    big, good, bad, innocent = send_the_attack(ledger, accounts, good_first=good_first)
    assert ledger.writer.waiting == 1 + len(good) + BAD_ATOMIC_BATCHES + VICTIMS
    gate.open()
    _, not_done = wait([big, *good, *bad, *innocent], ANSWER_WAIT_S)
    assert not not_done
    writer_loads = list(loads)  # the balance checks below load too

    assert all(isinstance(f.result(), MovementRecorded) for f in innocent), [
        f.exception() for f in innocent if f.exception()]
    assert isinstance(big.result(), BatchRecorded) and big.result().applied
    assert all(f.result().applied for f in good)
    for refused in bad:
        error = refused.exception()
        assert isinstance(error, BatchAborted) and error.index == 1, error
    moved = [ledger.balance(a) - before for a, before in zip(victims, balances_before,
                                                              strict=True)]
    assert moved == [-VICTIMS // 2, -VICTIMS // 2, VICTIMS // 2, VICTIMS // 2]

    counts = counts.since()
    redecides = 1 if good_first else 0
    assert counts["redecides_refused_midway"] == redecides
    assert counts["redeciding_refusals"] == redecides
    assert counts["sent_on"] == (BAD_ATOMIC_BATCHES - 1) * redecides
    assert counts["redecides_lost_commit"] == 0 and counts["turns"] == 0
    assert ledger.processor.conflicts == conflicts_before, "no budget spent"
    answered = 1 + len(good) + BAD_ATOMIC_BATCHES + VICTIMS + 1  # and the gate's command
    assert counts["answered"] == answered
    assert counts["retried_0"] == answered - len(good), "only the good batch decided twice"
    # Nothing was loaded again from the store: a refused batch only ever had
    # copies of the cached accounts. The one read per bad batch asks whether
    # its refused item's id was used by an earlier success (a retry): none.
    assert writer_loads == ["NoneType"] * BAD_ATOMIC_BATCHES
    for account in [*accounts["rich"], accounts["poor"], *victims]:
        cached, stored = ledger.processor.cache.get(account), ledger.app.load(account)
        assert (cached.version, cached.balance) == (stored.version, stored.balance), \
            "what the writer kept cached is what the store holds"


def count_loads(ledger, monkeypatch) -> list[str]:
    """What each read of an aggregate from the store found, from now on
    (its class name; NoneType: nothing under that id)."""
    loads: list[str] = []
    load = ledger.app.load

    def counted(aggregate_id):
        loaded = load(aggregate_id)
        loads.append(type(loaded).__name__)
        return loaded

    monkeypatch.setattr(ledger.app, "load", counted)
    return loads


def test_victims_arriving_while_bad_batches_are_sent_on_are_decided_once(
        ledger, accounts, monkeypatch):
    """Victims sent after the writer started on the attack join whichever
    group is next; none of them is decided twice."""
    gate = Gate(ledger, monkeypatch)
    counts = WriterCounts()
    send = ledger.writer.send
    good = send(good_atomic_batch(accounts), authority=INTERNAL)
    bad = [send(bad_atomic_batch(accounts), authority=INTERNAL) for _ in range(BAD_ATOMIC_BATCHES)]
    victims = accounts["victims"]
    innocent = [send(transfer(victims[0], victims[1]), authority=INTERNAL) for _ in range(VICTIMS)]
    gate.open()
    late = [send(transfer(victims[2], victims[3]), authority=INTERNAL) for _ in range(VICTIMS)]
    _, not_done = wait([good, *bad, *innocent, *late], ANSWER_WAIT_S)
    assert not not_done
    assert good.result().applied
    assert all(isinstance(f.exception(), BatchAborted) for f in bad)
    assert all(isinstance(f.result(), MovementRecorded) for f in innocent + late)
    counts = counts.since()
    assert counts["redecides_refused_midway"] == counts["redeciding_refusals"] == 1
    assert counts["sent_on"] == BAD_ATOMIC_BATCHES - 1
    assert counts["retried_0"] == counts["answered"] - 1, "only the good batch decided twice"


def test_a_lost_commit_costs_each_command_its_own_budget(ledger, accounts, monkeypatch):
    """A command sent on carries what it spent; another command's spending
    never shortens a fresh command's budget."""
    rich = accounts["rich"]
    limit = processor_module.CONFLICT_RETRIES_MAX
    put = ledger.app.events.put
    lost = []

    def lose_once(events, **kwargs):
        if not lost:
            lost.append(1)
            raise IntegrityError("a rival committed first")
        return put(events, **kwargs)

    monkeypatch.setattr(ledger.app.events, "put", lose_once)
    worn, fresh = transfer(rich[0], rich[1]), transfer(rich[2], rich[3])
    answer = ledger.processor.process_group([worn, fresh], [limit - 1, 0])
    worn_result, fresh_result = answer.results
    assert isinstance(worn_result, LedgerUnavailable) and "contended" in worn_result.message
    assert isinstance(fresh_result, MovementRecorded)
    assert answer.spent == [limit, 1]
    assert answer.decided == [1, 2]
    assert answer.redecides == {LOST_COMMIT: 1}
    assert ledger.app.load(worn.transfer_id) is None
    assert answer.turns == 1, "the worn command's attempt took the turn; the fresh one's did not"


def test_a_refusal_midway_spends_no_budget_and_holds_no_turn_across_redecides(
        ledger, accounts, monkeypatch):
    """Commands that already lost twice decide under the writer turn; a
    refusal midway ends that attempt and its turn, and the one re-decide
    takes the turn afresh: one turn per attempt, never one across many."""
    rich = accounts["rich"]
    turns_before = ledger.processor.turns_taken
    commands = [transfer(rich[0], rich[1]), *(bad_atomic_batch(accounts) for _ in range(10)),
                transfer(rich[2], rich[3])]
    worn = processor_module.OPTIMISTIC_ATTEMPTS
    answer = ledger.processor.process_group(commands, [worn] * len(commands))
    assert isinstance(answer.results[0], MovementRecorded)
    assert isinstance(answer.results[1], BatchAborted)
    assert answer.results[2:-1] == [None] * 9, "the later bad batches are sent on"
    assert isinstance(answer.results[-1], MovementRecorded)
    assert answer.spent == [worn] * len(commands), "a refusal spends nobody's budget"
    assert answer.decided == [2, 1, *[0] * 9, 1], "the first attempt stopped at the bad batch"
    assert answer.redecides == {REFUSED_MIDWAY: 1}
    assert answer.turns == 2 and ledger.processor.turns_taken == turns_before + 2


def test_a_store_failure_answers_every_command_even_those_sent_on(ledger, accounts, monkeypatch):
    """Nothing of the group was applied: the commands it would have sent on
    are answered ``unavailable`` with the rest, none left unanswered."""
    rich = accounts["rich"]

    def store_down(events, **kwargs):
        raise OperationalError("the store went away")

    monkeypatch.setattr(ledger.app.events, "put", store_down)
    commands = [transfer(rich[0], rich[1]), bad_atomic_batch(accounts),
                bad_atomic_batch(accounts), transfer(rich[2], rich[3])]
    answer = ledger.processor.process_group(commands)
    assert isinstance(answer.results[1], BatchAborted), "answered before the store failed"
    for index in (0, 2, 3):
        assert isinstance(answer.results[index], LedgerUnavailable), answer.results[index]


def test_the_writer_turn_is_released_before_each_redecide(postgres, postgres_database,
                                                          monkeypatch):
    """On PostgreSQL: commands that lost twice decide under the writer turn,
    and at each refusal midway the turn is already released (other processes
    commit in between), whichever way the group goes on."""
    ledger = LedgerHarness(postgres.env)
    try:
        rich = [ledger.open_account(10**12) for _ in range(4)]
        accounts = {"rich": rich, "poor": ledger.open_account(0)}
        recorder = ledger.app.recorder
        key = advisory_lock_key(f"deals-ledger:{recorder.datastore.schema}:"
                                f"{recorder.events_table_name}:writer-turn")
        held_at_refusals: list[bool] = []
        refused_midway = GroupAttempts.refused_midway

        def observed(self, index, error):
            held_at_refusals.append(turn_held(postgres_database.name, key))
            return refused_midway(self, index, error)

        monkeypatch.setattr(GroupAttempts, "refused_midway", observed)
        commands = [bad_atomic_batch(accounts), transfer(rich[0], rich[1]),
                    bad_atomic_batch(accounts), transfer(rich[2], rich[3])]
        worn = processor_module.OPTIMISTIC_ATTEMPTS
        answer = ledger.processor.process_group(commands, [worn] * len(commands))
        assert isinstance(answer.results[1], MovementRecorded)
        assert held_at_refusals == [False, False]
        assert answer.turns == 3, "one per attempt: the free retry, the re-decide, the commit"
        assert not turn_held(postgres_database.name, key)
    finally:
        ledger.close()


def turn_held(database: str, key: int) -> bool:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    with pg_connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = %s AND objid::bigint = %s",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchone()
    return row[0] > 0
