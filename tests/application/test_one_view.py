"""A command decides on one view of everything it reads, across processes.

Two writers (each the write core of a process: its own event store
application, aggregate cache and writer thread) share one PostgreSQL schema.
A writer's cache is current as of the last changes it read; an aggregate it
loads afterwards may be newer. Before, a capture could read its hold from
the cache (pending) and the hold's account fresh from the store (the other
writer had voided the hold meanwhile) and answer 404 ``hold_not_found`` for
a hold that exists. Now a batch whose reads span a commit of another
process is decided again, as if its commit had lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application import commands as c
from application.authority import INTERNAL
from domain.amounts import UNITS_PER_DEAL
from domain.errors import HoldNotPending, LedgerError
from tests.support.http import wait_until
from tests.support.ledgers import LedgerHarness

ONE = UNITS_PER_DEAL
ANSWER_TIMEOUT_S = 120


@pytest.fixture
def two_writers(postgres) -> Iterator[tuple[LedgerHarness, LedgerHarness]]:
    first = LedgerHarness(postgres.env)
    second = LedgerHarness(postgres.env, clock=first.clock, genesis=False)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def test_a_commit_between_reading_a_hold_and_its_account_is_not_a_404(two_writers):
    ours, theirs = two_writers
    account, hold = ours.open_account(10 * ONE), uuid4()
    ours.execute(c.PlaceHold(hold, account, amount=ONE))  # both now in our cache
    theirs.execute(c.Mint(uuid4(), account, ONE))  # our next batch drops the account, keeps the hold
    interleaved = []
    load = ours.app.load

    def load_after_their_void(aggregate_id: UUID):
        if aggregate_id == account and not interleaved:
            interleaved.append(theirs.execute(c.VoidHold(hold)))  # lands between our two reads
        return load(aggregate_id)

    ours.app.load = load_after_their_void  # type: ignore[method-assign]
    with pytest.raises(HoldNotPending, match="voided"):
        ours.execute(c.CaptureHold(hold))
    assert interleaved, "the other writer's void did not land between the two reads"
    stored = ours.app.account(account)
    assert (stored.balance, stored.held) == (11 * ONE, 0)


HOLDS_PER_ACCOUNT = 30
ACCOUNTS = 3
SPENDS_PER_ACCOUNT = 40


def test_captures_voids_and_spends_racing_on_two_writers_count_exactly(two_writers):
    """Each hold is captured through one writer and voided through the other
    at the same moment, while both writers spend from the same accounts:
    every hold closes exactly once, no answer is a 404, and the balances are
    exactly what the acknowledged commands say."""
    ours, theirs = two_writers
    funded = HOLDS_PER_ACCOUNT * ONE + SPENDS_PER_ACCOUNT * ONE // 2
    accounts = [ours.open_account(funded) for _ in range(ACCOUNTS)]
    sink = ours.open_account()
    holds = {uuid4(): account for account in accounts for _ in range(HOLDS_PER_ACCOUNT)}
    for hold, account in holds.items():
        ours.execute(c.PlaceHold(hold, account, amount=ONE))

    answers: dict[str, list[tuple[c.Command, object]]] = {}
    streams = {
        "capture": (ours, [c.CaptureHold(hold) for hold in holds]),
        "void": (theirs, [c.VoidHold(hold) for hold in holds]),
        "spend here": (ours, _spends(accounts, sink)),
        "spend there": (theirs, _spends(accounts, sink)),
    }
    threads = [threading.Thread(target=_send_all, args=(writer, commands, answers, name))
               for name, (writer, commands) in streams.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ANSWER_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads)

    kinds = Counter((name, _kind(answer)) for name, got in answers.items() for _, answer in got)
    assert set(kinds) <= {
        ("capture", "ok"), ("capture", "hold_not_pending"), ("void", "ok"),
        ("void", "hold_not_pending"), ("spend here", "ok"), ("spend here", "insufficient_balance"),
        ("spend there", "ok"), ("spend there", "insufficient_balance"),
    }, kinds
    closed = Counter(command.hold_id for name in ("capture", "void")
                     for command, answer in answers[name] if _kind(answer) == "ok")
    assert closed == Counter(dict.fromkeys(holds, 1))
    captured = Counter(holds[command.hold_id] for command, answer in answers["capture"]
                       if _kind(answer) == "ok")
    spent = Counter(command.source for name in ("spend here", "spend there")
                    for command, answer in answers[name] if _kind(answer) == "ok")
    for account in accounts:
        stored = theirs.app.account(account)
        assert stored.held == 0
        assert stored.balance == funded - ONE * captured[account] - ONE * spent[account]
    assert theirs.app.account(sink).balance == ONE * sum(spent.values())


def _spends(accounts: list[UUID], sink: UUID) -> list[c.Command]:
    return [c.TransferFunds(uuid4(), account, sink, ONE)
            for _ in range(SPENDS_PER_ACCOUNT) for account in accounts]


def _send_all(writer: LedgerHarness, commands: list[c.Command],
              answers: dict[str, list[tuple[c.Command, object]]], name: str) -> None:
    """Sent eight at a time, so each writer batches them with the others'."""
    got: list[tuple[c.Command, object]] = []
    for start in range(0, len(commands), 8):
        chunk = commands[start:start + 8]
        sent = [writer.writer.send(command, authority=INTERNAL) for command in chunk]
        for command, future in zip(chunk, sent, strict=True):
            try:
                got.append((command, future.result(ANSWER_TIMEOUT_S)))
            except LedgerError as refusal:
                got.append((command, refusal))
    answers[name] = got


def _kind(answer: object) -> str:
    if isinstance(answer, LedgerError):
        return answer.code
    return "ok"



ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_racing_captures_voids_and_spends_count_exactly(postgres, tmp_path):
    """The same race between two real processes (``tests.support.racer``):
    one captures every hold, the other voids every hold, both spend."""
    ledger = LedgerHarness(postgres.env)
    try:
        funded = HOLDS_PER_ACCOUNT * ONE + SPENDS_PER_ACCOUNT * ONE // 2
        accounts = [ledger.open_account(funded) for _ in range(ACCOUNTS)]
        sink = ledger.open_account()
        holds = {uuid4(): account for account in accounts for _ in range(HOLDS_PER_ACCOUNT)}
        for hold, account in holds.items():
            ledger.execute(c.PlaceHold(hold, account, amount=ONE))
        plans = {action: {uuid4(): account for _ in range(SPENDS_PER_ACCOUNT)
                          for account in accounts} for action in ("capture", "void")}
        spends = {spend: account for plan in plans.values() for spend, account in plan.items()}
        go = tmp_path / "go"
        racers = [_race(tmp_path, postgres.env, action, holds, plans[action], sink, go)
                  for action in plans]
        wait_until(lambda: all((tmp_path / f"{action}.ready").exists() for action in plans),
                   ANSWER_TIMEOUT_S, "both racers' writers running")
        go.touch()
        for process, _ in racers:
            assert process.wait(ANSWER_TIMEOUT_S) == 0
        answers = Counter()
        closed: Counter = Counter()
        captured: Counter = Counter()
        spent: Counter = Counter()
        for _, output in racers:
            for line in output.read_text().splitlines():
                kind, command_id, answer = line.split()
                answers[(kind, answer)] += 1
                if answer == "ok" and kind in ("capture", "void"):
                    closed[UUID(command_id)] += 1
                    captured[holds[UUID(command_id)]] += kind == "capture"
                elif answer == "ok":
                    spent[spends[UUID(command_id)]] += 1
        assert set(answers) <= {
            ("capture", "ok"), ("capture", "hold_not_pending"), ("void", "ok"),
            ("void", "hold_not_pending"), ("spend", "ok"), ("spend", "insufficient_balance"),
        }, answers
        assert sum(answers.values()) == 2 * len(holds) + len(spends)
        assert closed == Counter(dict.fromkeys(holds, 1))
        for account in accounts:
            stored = ledger.app.account(account)
            assert stored.held == 0
            assert stored.balance == funded - ONE * captured[account] - ONE * spent[account]
        assert ledger.app.account(sink).balance == ONE * sum(spent.values())
    finally:
        ledger.close()


def _race(tmp_path: Path, env: dict, action: str, holds: dict[UUID, UUID],
          spends: dict[UUID, UUID], sink: UUID, go: Path) -> tuple[subprocess.Popen, Path]:
    """A racer process: every hold ``action``-ed, and its own spends."""
    closing = [[action, str(hold)] for hold in holds]
    spending = [["spend", str(spend), str(account), str(sink), str(ONE)]
                for spend, account in spends.items()]
    commands = [spec for pair in zip_longest(closing, spending) for spec in pair if spec]
    output, config = tmp_path / f"{action}.txt", tmp_path / f"{action}.json"
    config.write_text(json.dumps({
        "env": env, "commands": commands, "output": str(output), "threads": 4,
        "ready": str(tmp_path / f"{action}.ready"), "go": str(go),
    }))
    process = subprocess.Popen([sys.executable, "-m", "tests.support.racer", str(config)],
                               cwd=ROOT)
    return process, output
