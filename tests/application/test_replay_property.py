"""Property: in any sequence of commands, settlements, freezes and repeats,
every repeat of a command that was applied answers exactly its first
answer and writes nothing (hypothesis; SQLite and PostgreSQL).

A command refused the first time left no trace, so its repeat is a new
attempt: whatever it answers then (applied or refused) is compared no
further, except that once applied, its first answer is that one.
"""

from __future__ import annotations

import os
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application import commands as c
from application.outcomes import BatchRecorded, Outcome
from domain.amounts import UNITS_PER_DEAL
from domain.errors import LedgerError
from tests.application.test_replays import unflagged
from tests.support.ledgers import LedgerHarness
from tests.support.settling import TX

EXAMPLES = int(os.environ.get("DEALS_REPLAY_EXAMPLES", "12"))
ACCOUNTS = 3
amounts = st.integers(min_value=1, max_value=3 * UNITS_PER_DEAL)
index = st.integers(min_value=0, max_value=50)

commands = st.one_of(
    st.tuples(st.just("transfer"), index, index, amounts),
    st.tuples(st.just("fee"), index, st.sampled_from(["search", "goal", "notification"])),
    st.tuples(st.just("reward"), index, amounts),
    st.tuples(st.just("hold"), index, amounts),
    st.tuples(st.just("capture"), index, st.none() | amounts),
    st.tuples(st.just("void"), index),
    st.tuples(st.just("reverse"), index),
    st.tuples(st.just("batch"), st.lists(st.tuples(index, index, amounts), min_size=1,
                                         max_size=3), st.booleans()),
    st.tuples(st.just("freeze"), index, st.booleans()),
    st.tuples(st.just("price"), amounts),
)
steps = st.lists(
    st.tuples(commands, st.none() | st.tuples(st.just("settle"), index),
              st.none() | st.tuples(st.just("repeat"), index)),
    min_size=3, max_size=20,
)
"""Each step: a command, then perhaps a settlement, then perhaps a repeat."""


class Run:
    """One sequence on a ledger: the commands sent and their first answers."""

    def __init__(self, ledger: LedgerHarness) -> None:
        self.ledger = ledger
        self.accounts = [ledger.open_account(2 * UNITS_PER_DEAL) for _ in range(ACCOUNTS)]
        self.sent: list[c.Command] = []
        self.first: dict[int, Outcome | LedgerError] = {}
        self.movements: list[UUID] = []
        self.holds: list[UUID] = []

    def account(self, i: int) -> UUID:
        return self.accounts[i % ACCOUNTS]

    def command_for(self, step: tuple) -> c.Command | None:
        kind, *args = step
        if kind == "transfer":
            return c.TransferFunds(uuid4(), self.account(args[0]), self.account(args[1]), args[2])
        if kind == "fee":
            return c.ChargeFee(uuid4(), self.account(args[0]), args[1])
        if kind == "reward":
            return c.DistributeReward(uuid4(), self.account(args[0]), "bonus", args[1])
        if kind == "hold":
            return c.PlaceHold(uuid4(), self.account(args[0]), amount=args[1])
        if kind in ("capture", "void") and self.holds:
            hold = self.holds[args[0] % len(self.holds)]
            return c.CaptureHold(hold, args[1]) if kind == "capture" else c.VoidHold(hold)
        if kind == "reverse" and self.movements:
            return c.ReverseTransfer(uuid4(), self.movements[args[0] % len(self.movements)])
        if kind == "batch":
            return c.TransferBatch(tuple(
                c.TransferFunds(uuid4(), self.account(s), self.account(d), a)
                for s, d, a in args[0]), atomic=args[1])
        if kind == "freeze":
            account = self.account(args[0])
            return c.FreezeAccount(account) if args[1] else c.UnfreezeAccount(account)
        if kind == "price":
            return c.SetPriceRule("search", args[0])
        return None

    def run(self, step: tuple) -> None:
        kind = step[0]
        if kind == "settle":
            self.settle(step[1])
        elif kind == "repeat":
            self.repeat(step[1])
        else:
            command = self.command_for(step)
            if command is not None:
                self.first[len(self.sent)] = self.send(command)
                self.sent.append(command)

    def send(self, command: c.Command) -> Outcome | LedgerError:
        try:
            outcome = self.ledger.execute(command)
        except LedgerError as error:
            return error
        self.remember(command, outcome)
        return outcome

    def remember(self, command: c.Command, outcome: Outcome) -> None:
        if isinstance(command, c.PlaceHold):
            self.holds.append(command.hold_id)
        elif isinstance(outcome, BatchRecorded):
            self.movements += [r.transfer_id for r in outcome.results if r.error is None]
        elif getattr(outcome, "transfer_id", None) is not None:
            self.movements.append(outcome.transfer_id)

    def settle(self, i: int) -> None:
        if not self.movements:
            return
        movement = self.movements[i % len(self.movements)]
        signature = f"sig-{uuid4().hex}"
        try:
            self.ledger.execute(c.RecordSubmission(signature, 300, TX, (movement,)))
            self.ledger.execute(c.MarkSettled(signature, 7, (movement,)))
        except LedgerError:
            pass  # not waiting for the chain (a pending hold, settled already...)

    def repeat(self, i: int) -> None:
        """The property: a command applied before answers its first answer."""
        if not self.sent:
            return
        number = i % len(self.sent)
        command, first = self.sent[number], self.first[number]
        if isinstance(command, (c.FreezeAccount, c.UnfreezeAccount, c.SetPriceRule)):
            return  # they set a state, have no id, and a later change makes a repeat new
        if not _applied_whole(first):
            self.first[number] = self.send(command)  # a new attempt
            return
        assert isinstance(first, Outcome)
        before = self.ledger.app.event_log.head()
        again = self.ledger.execute(command)
        assert self.ledger.app.event_log.head() == before
        assert again.replayed and unflagged(again) == unflagged(first), (command, first, again)


def _applied_whole(first: Outcome | LedgerError) -> bool:
    """Applied, and not a batch with an item that a repeat would try anew."""
    if isinstance(first, LedgerError):
        return False
    return not isinstance(first, BatchRecorded) or all(r.error is None for r in first.results)


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(sequence=steps)
def test_every_repeat_answers_its_first_answer(ledger, sequence):
    run = Run(ledger)
    for parts in sequence:
        for step in parts:
            if step is not None:
                run.run(step)
