"""The bookkeeping of one group's attempts: which commands are still to be
decided, which are answered already, which are sent on to the next group,
and what each command has spent of its own retry budget.

A group mixes the commands of many callers, so what one of them causes must
not be paid by the others:

- A command that changed aggregates and then failed (an atomic batch's bad
  item, or a bug) is answered with its refusal, charged to nobody's budget,
  and the group is decided again without it. When the failed attempt had
  decided nothing before it (the writer puts commands that can fail midway,
  ``can_fail_midway``, first in a group), nothing is decided twice: the
  next attempt simply goes on without it, and that is no re-decide. When
  it had, the group is re-decided once, and every later command of the group
  that could fail midway too is sent on to the next group instead of being
  decided here (where it goes first, so its refusal costs nothing there),
  so a group re-decides once for a refusal however many bad atomic batches
  are packed into it. Each group decides the first such command it holds,
  so none is sent on forever.
- A lost commit (another process changed an aggregate the group decided on)
  costs each command decided in that attempt one retry of its own budget; a
  command out of budget is answered ``unavailable`` alone, and what it spent
  goes with a command that is sent on. A command that has lost twice asks
  for the writer turn (``wants_turn``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from application.commands import Command, TransferBatch
from application.errors import LedgerUnavailable
from application.outcomes import Outcome
from domain.errors import LedgerError

Result = Outcome | LedgerError

REFUSED_MIDWAY = "refused_midway"
LOST_COMMIT = "lost_commit"
CAUSES = (REFUSED_MIDWAY, LOST_COMMIT)
"""Why a group is decided again (the label of the re-decide counter)."""


def can_fail_midway(command: Command) -> bool:
    """Whether deciding ``command`` can change aggregates and then fail.
    Handlers check before they change; only an atomic batch of several
    items can stop after its first items changed balances."""
    return isinstance(command, TransferBatch) and command.atomic and len(command.transfers) > 1


@dataclass
class GroupAnswer:
    """What a group's processing tells the writer, per command and in all."""

    results: list[Result | None]
    """The outcome or refusal of each command; None: sent on to the next group."""
    spent: list[int]
    """Each command's retry budget spent so far (lost commits it sat through)."""
    decided: list[int]
    """How many times each command was decided in this group (an attempt
    that stopped at a refusal midway did not reach the commands after it)."""
    redecides: dict[str, int] = field(default_factory=dict)
    """The group's re-decides by cause (``CAUSES``)."""
    redeciding_refusals: int = 0
    """Refusals midway that made the group decide again."""
    turns: int = 0
    """Writer turns taken for this group."""

    @property
    def sent_on(self) -> int:
        return sum(result is None for result in self.results)


class GroupAttempts:
    """One group's attempts, until every command is answered or sent on."""

    def __init__(self, commands: Sequence[Command], spent: Sequence[int] | None = None) -> None:
        self.commands = commands
        self.spent = list(spent) if spent is not None else [0] * len(commands)
        self.answered: dict[int, LedgerError] = {}
        self.sent_on: set[int] = set()
        self.decided = [0] * len(commands)
        self.redecides = dict.fromkeys(CAUSES, 0)
        self.redeciding_refusals = 0
        self.turns = 0
        self.out_of_budget = False

    def live(self) -> list[int]:
        """The commands the next attempt decides."""
        return [index for index in range(len(self.commands))
                if index not in self.answered and index not in self.sent_on]

    def skipped(self) -> dict[int, LedgerError | None]:
        """What an attempt does not decide: answered (the answer) or sent on (None)."""
        return {**dict.fromkeys(self.sent_on), **self.answered}

    def wants_turn(self, optimistic_attempts: int) -> bool:
        """Whether a command of the next attempt has lost often enough to
        decide under the writer turn."""
        return any(self.spent[index] >= optimistic_attempts for index in self.live())

    def refused_midway(self, index: int, error: LedgerError) -> bool:
        """``index`` changed aggregates and failed: answer it, and say
        whether anything is left to decide. If the attempt decided others
        before it, they are decided again (a re-decide) and the later
        commands that could fail midway too are sent on."""
        wasted = any(live < index for live in self.live())
        self._reached(lambda live: live <= index)
        self.answered[index] = error
        if not wasted:
            return bool(self.live())
        self.sent_on.update(later for later in self.live()
                            if later > index and can_fail_midway(self.commands[later]))
        return self._again(REFUSED_MIDWAY, refusal=True)

    def lost_commit(self, retries_max: int) -> bool:
        """The attempt's commit lost to another process: each command in it
        spends one retry; those out of budget are answered ``unavailable``.
        Says whether anything is left to decide again."""
        self._reached(lambda live: True)
        for index in self.live():
            self.spent[index] += 1
            if self.spent[index] >= retries_max:
                self.out_of_budget = True
                self.answered[index] = LedgerUnavailable(
                    "the event store stayed contended; the command was not applied, retry it")
        return self._again(LOST_COMMIT)

    def _reached(self, decided: Callable[[int], bool]) -> None:
        """The attempt decided the live commands for which ``decided`` holds."""
        for index in self.live():
            self.decided[index] += decided(index)

    def conflicts_in_a_row(self) -> int:
        return self.redecides[LOST_COMMIT]

    def _again(self, cause: str, *, refusal: bool = False) -> bool:
        if not self.live():
            return False
        self.redecides[cause] += 1
        self.redeciding_refusals += refusal
        return True

    def answer(self, decided: Sequence[Result | None] | None = None) -> GroupAnswer:
        """The group's answer: ``decided`` (the committed attempt's results,
        None where skipped) completed with what was answered before."""
        if decided is not None:
            self._reached(lambda live: True)
        results: list[Result | None] = [None] * len(self.commands)
        for index in range(len(self.commands)):
            if index in self.answered:
                results[index] = self.answered[index]
            elif decided is not None and index not in self.sent_on:
                results[index] = decided[index]
        return GroupAnswer(results, self.spent, self.decided,
                           {cause: n for cause, n in self.redecides.items() if n},
                           self.redeciding_refusals, self.turns)
