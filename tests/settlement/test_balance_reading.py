"""Which differences between a chain balance and a settled balance the
submissions around the chain read explain, and which they do not."""

from __future__ import annotations

from application.settlement.balance_reading import (
    CHANGES_MAX,
    BalanceReading,
    explained_differences,
)


def test_nothing_around_the_read_explains_only_agreement() -> None:
    assert explained_differences([], []) == frozenset({0})
    assert BalanceReading(expected=10, actual=10, explained=frozenset({0})).agrees
    assert not BalanceReading(expected=10, actual=11, explained=frozenset({0})).agrees


def test_in_flight_ones_may_have_landed_settled_ones_may_have_landed_later() -> None:
    explained = explained_differences([5, -2], [7])
    assert explained == frozenset({0, 5, -2, 3, -7, -2, -9, -4})
    assert BalanceReading(expected=100, actual=96, explained=explained).agrees
    assert not BalanceReading(expected=100, actual=101, explained=explained).agrees


def test_too_many_submissions_leave_the_reading_undecided_never_agreeing() -> None:
    explained = explained_differences([1] * CHANGES_MAX, [1])
    assert explained is None
    reading = BalanceReading(expected=0, actual=0, explained=explained)
    assert not reading.decided and not reading.agrees
