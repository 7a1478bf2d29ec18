"""Positions name whole commits: a cut inside one (a transfer's debit
without its credit) is rounded down to the last commit that ends at or
before it, so an audit at any position of a real log is conserved and a
balance at any position is a state that existed; the projector never stops
inside a commit either. And reads interleaved with commands always reflect
every acknowledged one (hypothesis)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from application import commands as c
from application.authority import INTERNAL
from application.eventlog.commits import CommitBoundaries
from domain.errors import AccountNotFound
from projections.queries import Consistency
from projections.runtime import ReadSide
from tests.interface.cli_support import cli
from tests.support.ledgers import SYSTEM_IDS

LAYOUTS = st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=6), min_size=1, max_size=6)
"""Commits of movements: each inner list is one group commit's amounts."""


def commit_together(ledger, commands) -> list[int]:
    """Submit ``commands`` at once so they share one group commit (mostly)."""
    futures = [ledger.writer.send(command, authority=INTERNAL) for command in commands]
    return [future.result(60).position for future in futures]


def transfers(ledger, accounts: list[UUID], amounts: list[int]) -> list[c.Command]:
    return [c.TransferFunds(uuid4(), accounts[i % len(accounts)],
                            accounts[(i + 1) % len(accounts)], amount, "layout")
            for i, amount in enumerate(amounts)]


def movements(accounts: list[UUID], amounts: list[int]) -> list[c.Command]:
    """Transfers, fees (to the treasury) and holds, in turn: a real log's
    commits mix the kinds of movement."""
    def command(i: int, amount: int) -> c.Command:
        source, destination = accounts[i % len(accounts)], accounts[(i + 1) % len(accounts)]
        return [c.TransferFunds(uuid4(), source, destination, amount, "layout"),
                c.ChargeFee(uuid4(), source, "search"),
                c.PlaceHold(uuid4(), source, amount=amount)][(amount + i) % 3]
    return [command(i, amount) for i, amount in enumerate(amounts)]


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(layout=LAYOUTS)
def test_an_audit_at_every_position_of_a_real_log_is_conserved(ledger, read_side, layout):
    accounts = [ledger.open_account(10**10) for _ in range(3)]
    everyone = ledger.__dict__.setdefault("opened", [*SYSTEM_IDS])  # earlier examples' too
    everyone += accounts
    start = ledger.app.event_log.head()
    for amounts in layout:
        commit_together(ledger, movements(accounts, amounts))
    read_side.projector.catch_up()
    commits = CommitBoundaries(ledger.app.event_log, read_side.decoder)
    for position in range(start, ledger.app.event_log.head() + 1):
        report = read_side.queries.audit_replay(until_position=position)
        assert report.supply_ok, (position, report.mismatches)
        assert not [m for m in report.mismatches if m.model in ("supply", "invariants")]
        assert report.position == commits.cut(position) <= position
        total = sum(balance_at(read_side.queries, account, position) for account in everyone)
        assert total == 0, position  # every point in time is a state that existed


def balance_at(queries, account: UUID, position: int) -> int:
    try:
        return queries.balance(account, at_position=position).balance
    except AccountNotFound:  # opened after that position
        return 0


def test_a_cut_inside_a_transfer_is_rounded_down_to_the_commit_before(ledger, read_side):
    source, destination = ledger.open_account(100), ledger.open_account()
    before = ledger.app.event_log.head()
    moved = ledger.execute(c.TransferFunds(uuid4(), source, destination, 30)).position
    read_side.projector.catch_up()
    queries = read_side.queries
    for inside in range(before + 1, moved):
        assert queries.audit_replay(until_position=inside).position == before
        view = queries.balance(source, at_position=inside)
        assert (view.balance, view.position) == (100, before)
        assert queries.balance(destination, at_position=inside).balance == 0
    assert queries.balance(source, at_position=moved).balance == 70
    replayed = cli(read_side_store(read_side), "replay", "--until-position", str(moved - 2))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"state at          position {before}" in replayed.stdout


def test_a_time_names_the_last_whole_commit_at_or_before_it(ledger, read_side):
    """At a transfer's own time both sides answer at the transfer's commit
    end (never the debit without the credit), at genesis time every system
    account answers at genesis's end, and that position, asked again,
    gives the same answer; the audit replay and the CLI cut there too."""
    source, destination = ledger.open_account(100), ledger.open_account()
    moved = ledger.execute(c.TransferFunds(uuid4(), source, destination, 30)).position
    read_side.projector.catch_up()
    queries = read_side.queries
    genesis = datetime.fromisoformat(queries.commits.time_at(1))
    at_genesis = {queries.balance(account, at_time=genesis)
                  for account in SYSTEM_IDS}
    assert len({view.position for view in at_genesis}) == 1
    for view in at_genesis:
        assert queries.balance(view.account_id, at_position=view.position) == view
    stamp = queries.commits.time_at(moved)
    when = datetime.fromisoformat(stamp)
    for account, expected in ((source, 70), (destination, 30)):
        view = queries.balance(account, at_time=when)
        assert (view.balance, view.position) == (expected, moved)
        assert queries.balance(account, at_position=view.position) == view
    assert queries.audit_replay(until=when).position == moved
    replayed = cli(read_side_store(read_side), "replay", "--until", stamp)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"state at          position {moved}" in replayed.stdout


def read_side_store(read_side):
    return read_side.store_config


@pytest.fixture
def read_side(ledger, store):  # noqa: F811 - the CLI needs the store's config too
    side = ReadSide(ledger.app, store.env, clock=ledger.clock, wait_s_max=0.5)
    side.store_config = store
    yield side
    side.close()


def test_the_projector_never_stops_inside_a_commit(ledger, store):
    accounts = [ledger.open_account(1_000) for _ in range(2)]
    commit_together(ledger, transfers(ledger, accounts, [1] * 40))  # one commit, ~120 events
    side = ReadSide(ledger.app, store.env, clock=ledger.clock, page_events=7)
    commits = CommitBoundaries(ledger.app.event_log, side.decoder)
    try:
        stops = []
        while (report := side.projector.run_once()).events:
            stops.append(report.position)
        assert stops and stops[-1] == ledger.app.event_log.head()
        assert all(commits.cut(stop) == stop for stop in stops)
    finally:
        side.close()


def test_a_hold_at_a_position_is_judged_at_that_commits_time(ledger, read_side):
    account = ledger.open_account(1_000)
    placed = ledger.execute(c.PlaceHold(uuid4(), account, amount=300, expires_in_s=60)).position
    read_side.projector.catch_up()
    first = read_side.queries.balance(account, at_position=placed)
    ledger.clock.advance(3600)  # long past the expiry, the sweeper not yet run
    read_side.projector.catch_up()
    later = read_side.queries.balance(account, at_position=placed)
    assert (first.held, later.held) == (300, 300)  # the same question, the same answer
    assert read_side.queries.balance(account).held == 0  # now, it has expired


class ReadsFollowCommands(RuleBasedStateMachine):
    """Commands (transfers, holds placed and captured) and default reads
    interleaved; each read (balance and held, history) must equal a model of
    the acknowledged commands (the projector runs on its own thread)."""

    ledger = None
    read_side = None

    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[UUID, int] = {}
        self.held: dict[UUID, int] = {}
        self.holds: list[tuple[UUID, UUID, int]] = []  # hold id, owner, amount: pending
        self.moves: dict[UUID, int] = {}

    @rule()
    def open_funded(self) -> None:
        account = self.ledger.open_account(500)
        self.balances[account] = 500
        self.held[account] = 0
        self.moves[account] = 1

    @rule(data=st.data(), amount=st.integers(1, 600))
    def transfer(self, data, amount: int) -> None:
        if len(self.balances) < 2:
            return
        source, destination = data.draw(st.permutations(sorted(self.balances)))[:2]
        try:
            self.ledger.execute(c.TransferFunds(uuid4(), source, destination, amount))
        except Exception as error:
            assert type(error).__name__ == "InsufficientBalance"
            assert amount > self.balances[source] - self.held[source]
            return
        self.balances[source] -= amount
        self.balances[destination] += amount
        self.moves[source] += 1
        self.moves[destination] += 1

    @rule(data=st.data(), amount=st.integers(1, 300))
    def place_hold(self, data, amount: int) -> None:
        if not self.balances:
            return
        account = data.draw(st.sampled_from(sorted(self.balances)))
        hold_id = uuid4()
        try:
            self.ledger.execute(c.PlaceHold(hold_id, account, amount=amount))
        except Exception as error:
            assert type(error).__name__ == "InsufficientBalance"
            assert amount > self.balances[account] - self.held[account]
            return
        self.held[account] += amount
        self.holds.append((hold_id, account, amount))

    @rule(data=st.data())
    def capture_a_hold(self, data) -> None:
        if not self.holds:
            return
        hold_id, account, amount = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        self.ledger.execute(c.CaptureHold(hold_id))
        self.held[account] -= amount
        self.balances[account] -= amount
        self.moves[account] += 1

    @rule(data=st.data())
    def read_a_balance(self, data) -> None:
        if not self.balances:
            return
        account = data.draw(st.sampled_from(sorted(self.balances)))
        head = self.ledger.app.event_log.head()  # every acknowledged command is in it
        view = self.read_side.queries.balance(account)
        assert (view.balance, view.held) == (self.balances[account], self.held[account])
        assert view.position >= head

    @rule(data=st.data())
    def read_a_history(self, data) -> None:
        if not self.balances:
            return
        account = data.draw(st.sampled_from(sorted(self.balances)))
        page = self.read_side.queries.history(account, limit=1000)
        assert len(page.items) == self.moves[account]
        assert page.items[-1].balance_after == self.balances[account]

    @invariant()
    def an_eventual_read_is_never_ahead_of_the_model(self) -> None:
        for account, balance in self.balances.items():
            try:
                view = self.read_side.queries.balance(account, consistency=Consistency.EVENTUAL)
            except AccountNotFound:  # not projected yet: eventual reads may lag
                break
            assert view.position <= self.ledger.app.event_log.head()
            if view.position >= self.ledger.app.event_log.head():
                assert view.balance == balance
            break


def test_every_default_read_reflects_every_acknowledged_command(ledger, store):
    side = ReadSide(ledger.app, store.env, clock=ledger.clock, wait_s_max=60).start()
    ledger.writer.add_observer(side.on_batch)
    ReadsFollowCommands.ledger, ReadsFollowCommands.read_side = ledger, side
    try:
        run_state_machine_as_test(ReadsFollowCommands, settings=settings(
            max_examples=8, stateful_step_count=25, deadline=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        ReadsFollowCommands.ledger = ReadsFollowCommands.read_side = None
        side.close()
