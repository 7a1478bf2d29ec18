"""An account's token balance judged against the settlement store while a
settler works.

The chain and the store cannot be read at one instant, and a settler may
record, land and settle submissions between the two reads, however often the
reads are repeated (a busy settler on a busy machine never stands still).
So a reading brackets the chain read instead: the store's log position
*before* it, then, *after* it, the settled balance, the submissions in flight
and the submissions settled since *before*. At the chain read, the token
account held the settled balance *after*, less what some of the submissions
settled since *before* moved (they may have landed only after the read),
plus what some of those in flight *after* moved (they may have landed
already): a submission is recorded before it is sent and marked settled only
once confirmed, and a failed, rejected or superseded one moved nothing. A
difference that no such choice explains is a finding, whatever the settler
did meanwhile; one that some choice explains is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CHANGES_MAX = 16
"""Submissions touching one account within one reading past which the
reading is undecided (the explanations are its 2**n subset sums)."""


@dataclass(frozen=True)
class BalanceReading:
    expected: int
    """The settled balance after the chain read."""
    actual: int
    """The token account's balance on chain."""
    explained: frozenset[int] | None
    """Differences (actual - expected) the submissions of the window account
    for; None when too many touched the account to tell."""

    @property
    def decided(self) -> bool:
        return self.explained is not None

    @property
    def agrees(self) -> bool:
        return self.explained is not None and self.actual - self.expected in self.explained


def explained_differences(
    landing: Sequence[int], confirmed_since: Sequence[int]
) -> frozenset[int] | None:
    """Every sum of some of ``landing`` (in flight: may have landed before
    the read) less some of ``confirmed_since`` (settled since the bracket
    opened: may have landed after it); None past ``CHANGES_MAX`` changes."""
    if len(landing) + len(confirmed_since) > CHANGES_MAX:
        return None
    sums = {0}
    for change in landing:
        sums |= {total + change for total in sums}
    for change in confirmed_since:
        sums |= {total - change for total in sums}
    return frozenset(sums)
