"""The ledger against a simple model, step by step (hypothesis stateful).

After every step: all balances sum to zero with the issuance account, no
available balance is negative, a repeated command changes nothing, a
refused command leaves the log as it was, and a fresh replay of the log
equals both the live state and the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from application import commands as c
from application.outcomes import BatchRecorded
from application.write.event_store import LedgerApplication
from domain.account import Account
from domain.errors import LedgerError
from domain.pricing import PRICES_DEFAULT
from domain.system import ISSUANCE_ID, SYSTEM_ACCOUNTS, TREASURY_ID
from tests.support.ledgers import LedgerHarness
from tests.support.services import PostgresTestDatabase, unreachable
from tests.support.settling import TX
from tests.support.stores import postgres_store, sqlite_store

amounts = st.integers(min_value=1, max_value=5 * 10**8)
# Each step re-checks the whole log, so shrinking a failure is slow; the
# failing sequence is printed unshrunk instead.
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
EXAMPLES = int(os.environ.get("DEALS_MODEL_EXAMPLES", "25"))


@dataclass
class ModelHold:
    account: UUID
    amount: int
    expires_at: float
    state: str = "pending"


@dataclass
class Model:
    """What the ledger should hold, by the plainest possible rules."""

    balances: dict[UUID, int] = field(default_factory=dict)
    held: dict[UUID, int] = field(default_factory=dict)
    frozen: set[UUID] = field(default_factory=set)
    allowances: dict[tuple[UUID, UUID], int] = field(default_factory=dict)
    holds: dict[UUID, ModelHold] = field(default_factory=dict)
    movements: dict[UUID, tuple[UUID, UUID, int]] = field(default_factory=dict)
    reversed: set[UUID] = field(default_factory=set)
    settlement: dict[UUID, str] = field(default_factory=dict)
    """Each movement's settlement on chain: queued until a rule settles or
    fails it."""
    reverses: dict[UUID, UUID] = field(default_factory=dict)
    """Each admin reversal's original."""
    clock_s: float = 0.0

    def available(self, account: UUID) -> int:
        return self.balances[account] - self.held.get(account, 0)

    def refusal(
        self, source: UUID, destination: UUID, amount: int, spender: UUID | None = None,
    ) -> str | None:
        if source == destination:
            return "same_account"
        if source in self.frozen or destination in self.frozen or spender in self.frozen:
            return "account_frozen"
        if source != ISSUANCE_ID and self.available(source) < amount:
            return "insufficient_balance"
        return None

    def move(self, movement_id: UUID, source: UUID, destination: UUID, amount: int) -> None:
        self.balances[source] -= amount
        self.balances[destination] += amount
        self.movements[movement_id] = (source, destination, amount)
        self.settlement[movement_id] = "queued"

    def fail(self, movement_id: UUID) -> bool:
        """The movement failed on chain: compensated (moved back, never on
        chain) unless the ledger refuses it; a compensated reversal gives
        its original its effect back, so the original is reversible again.
        Whether it was compensated."""
        self.settlement[movement_id] = "failed"
        source, destination, amount = self.movements[movement_id]
        if self.refusal(destination, source, amount) is not None:
            return False
        self.balances[destination] -= amount
        self.balances[source] += amount
        self.reversed.add(movement_id)
        self.reversed.discard(self.reverses.get(movement_id))
        return True

    def reversal_refusal(self, original: UUID) -> str | None:
        """An admin reversal goes on chain: its original must be settled."""
        if self.settlement[original] == "failed":
            return "transfer_not_reversible"
        if self.settlement[original] != "settled":
            return "transfer_not_settled"
        source, destination, amount = self.movements[original]
        return self.refusal(destination, source, amount)


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    done_commands = Bundle("done_commands")
    open_holds = Bundle("open_holds")

    def __init__(self, store_factory) -> None:
        super().__init__()
        self.store, self.cleanup = store_factory()
        self.ledger = LedgerHarness(self.store.env)
        self.model = Model()
        for account in SYSTEM_ACCOUNTS.values():
            self.model.balances[account] = self.ledger.balance(account)

    def teardown(self) -> None:
        self.ledger.close()
        self.cleanup()

    # Running commands against both.

    def run(self, command: c.Command, expected_error: str | None):
        before = self.ledger.app.event_log.head()
        try:
            outcome = self.ledger.execute(command)
        except LedgerError as error:
            assert error.code == expected_error, (command, error)
            assert self.ledger.app.event_log.head() == before
            return None
        assert expected_error is None, (command, expected_error)
        return outcome

    @rule(target=accounts, funds=st.integers(min_value=0, max_value=10 * 10**8))
    def open_account(self, funds):
        account = uuid4()
        self.run(c.OpenAccount(account), None)
        self.model.balances[account] = 0
        if funds:
            mint_id = uuid4()
            self.run(c.Mint(mint_id, account, funds), None)
            self.model.move(mint_id, ISSUANCE_ID, account, funds)
        return account

    @rule(target=done_commands, source=accounts, destination=accounts, amount=amounts)
    def transfer(self, source, destination, amount):
        command = c.TransferFunds(uuid4(), source, destination, amount, "model")
        expected = self.model.refusal(source, destination, amount)
        self.run(command, expected)
        if expected is not None:
            return multiple()
        self.model.move(command.transfer_id, source, destination, amount)
        return command

    @rule(target=done_commands, account=accounts, service=st.sampled_from(sorted(PRICES_DEFAULT)))
    def charge_fee(self, account, service):
        command = c.ChargeFee(uuid4(), account, service)
        price = PRICES_DEFAULT[service]
        expected = self.model.refusal(account, TREASURY_ID, price)
        self.run(command, expected)
        if expected is not None:
            return multiple()
        self.model.move(command.charge_id, account, TREASURY_ID, price)
        return command

    @rule(target=done_commands, source=accounts, destination=accounts,
          amounts_=st.lists(amounts, min_size=1, max_size=4), atomic=st.booleans())
    def batch(self, source, destination, amounts_, atomic):
        items = tuple(c.TransferFunds(uuid4(), source, destination, a) for a in amounts_)
        trial = Model(dict(self.model.balances), dict(self.model.held), set(self.model.frozen))
        refusals = []
        for item in items:
            refusal = trial.refusal(source, destination, item.amount)
            refusals.append(refusal)
            if refusal is None:
                trial.move(item.transfer_id, source, destination, item.amount)
        first_refusal = next((r for r in refusals if r), None)
        outcome = self.run(c.TransferBatch(items, atomic), first_refusal if atomic else None)
        if atomic and first_refusal:
            return multiple()
        assert [r.error.code if r.error else None for r in outcome.results] == refusals
        for item, refusal in zip(items, refusals, strict=True):
            if refusal is None:
                self.model.move(item.transfer_id, source, destination, item.amount)
        # A refused item was never recorded, so a retry may apply it later:
        # only wholly applied batches must repeat as no-ops.
        return multiple() if first_refusal else c.TransferBatch(items, atomic)

    @rule(target=open_holds, account=accounts, amount=amounts,
          expires_in_s=st.integers(min_value=1, max_value=100))
    def place_hold(self, account, amount, expires_in_s):
        hold_id = uuid4()
        expected = "account_frozen" if account in self.model.frozen else (
            "insufficient_balance" if self.model.available(account) < amount else None)
        self.run(c.PlaceHold(hold_id, account, amount=amount, expires_in_s=expires_in_s), expected)
        if expected is None:
            self.model.held[account] = self.model.held.get(account, 0) + amount
            self.model.holds[hold_id] = ModelHold(account, amount, self.model.clock_s + expires_in_s)
        return hold_id

    def _hold_refusal(self, hold: ModelHold | None, *, capture: bool) -> str | None:
        if hold is None:
            return "hold_not_found"
        if hold.state != "pending" or self.model.clock_s >= hold.expires_at:
            return "hold_not_pending"
        if capture and hold.account in self.model.frozen:
            return "account_frozen"
        return None

    def _release(self, hold: ModelHold, state: str) -> None:
        hold.state = state
        self.model.held[hold.account] -= hold.amount

    @rule(hold_id=consumes(open_holds), part=st.integers(min_value=1, max_value=4))
    def capture(self, hold_id, part):
        hold = self.model.holds.get(hold_id)
        amount = max(1, hold.amount // part) if hold else 1
        expected = self._hold_refusal(hold, capture=True)
        self.run(c.CaptureHold(hold_id, amount), expected)
        if expected is None:
            self._release(hold, "captured")
            self.model.move(hold_id, hold.account, TREASURY_ID, amount)

    @rule(hold_id=consumes(open_holds))
    def void(self, hold_id):
        hold = self.model.holds.get(hold_id)
        expected = self._hold_refusal(hold, capture=False)
        self.run(c.VoidHold(hold_id), expected)
        if expected is None:
            self._release(hold, "voided")

    @rule(seconds=st.integers(min_value=1, max_value=60))
    def time_passes_and_due_holds_expire(self, seconds):
        self.ledger.clock.advance(seconds)
        self.model.clock_s += seconds
        for hold_id, hold in self.model.holds.items():
            if hold.state == "pending" and self.model.clock_s >= hold.expires_at:
                self.run(c.ExpireHold(hold_id), None)
                self._release(hold, "expired")

    @rule(account=accounts, freeze=st.booleans())
    def freeze_or_unfreeze(self, account, freeze):
        self.run(c.FreezeAccount(account) if freeze else c.UnfreezeAccount(account), None)
        (self.model.frozen.add if freeze else self.model.frozen.discard)(account)

    @rule(target=done_commands, owner=accounts, spender=accounts, destination=accounts,
          allowance=amounts, amount=amounts)
    def spend_allowance(self, owner, spender, destination, allowance, amount):
        if owner == spender:
            return multiple()
        allowed = self.model.allowances.get((owner, spender), 0)
        # freeze binds both parties; lowering a frozen spender's allowance is allowed
        approve_refused = owner in self.model.frozen or (
            spender in self.model.frozen and allowance > allowed)
        self.run(c.SetAllowance(owner, spender, allowance),
                 "account_frozen" if approve_refused else None)
        if not approve_refused:
            allowed = self.model.allowances[(owner, spender)] = allowance
        command = c.TransferFrom(uuid4(), spender, owner, destination, amount)
        expected = self.model.refusal(owner, destination, amount, spender)
        if expected is None and amount > allowed:
            expected = "allowance_exceeded"
        self.run(command, expected)
        if expected is not None:
            return multiple()
        self.model.allowances[(owner, spender)] = allowed - amount
        self.model.move(command.transfer_id, owner, destination, amount)
        return command

    @rule(target=done_commands, pick=st.integers(min_value=0, max_value=1000))
    def reverse_a_movement(self, pick):
        candidates = [m for m in self.model.movements if m not in self.model.reversed
                      and self.model.movements[m][0] != ISSUANCE_ID]
        if not candidates:
            return multiple()
        original = candidates[pick % len(candidates)]
        source, destination, amount = self.model.movements[original]
        command = c.ReverseTransfer(uuid4(), original)
        expected = self.model.reversal_refusal(original)
        self.run(command, expected)
        if expected is not None:
            return multiple()
        self.model.move(command.reversal_id, destination, source, amount)
        self.model.reversed.add(original)
        self.model.reversed.add(command.reversal_id)
        self.model.reverses[command.reversal_id] = original
        return command

    @rule(pick=st.integers(min_value=0, max_value=1000))
    def a_movement_settles(self, pick):
        queued = [m for m, state in self.model.settlement.items() if state == "queued"]
        if queued:
            movement = queued[pick % len(queued)]
            self.ledger.settle(movement)
            self.model.settlement[movement] = "settled"

    @rule(pick=st.integers(min_value=0, max_value=1000))
    def a_movement_fails_on_chain(self, pick):
        queued = [m for m, state in self.model.settlement.items() if state == "queued"]
        if not queued:
            return
        movement = queued[pick % len(queued)]
        signature = f"sig-{uuid4().hex}"
        self.ledger.execute(c.RecordSubmission(signature, 300, TX, (movement,)))
        step = self.ledger.execute(c.MarkSettlementFailed(signature, "refused", (movement,)))
        compensated = self.model.fail(movement)
        assert bool(step.compensations) == compensated, step
        assert bool(step.blocked) != compensated, step

    @rule(command=done_commands)
    def a_repeated_command_changes_nothing(self, command):
        before = self.ledger.app.event_log.head()
        balances = self.live_balances()
        outcome = self.ledger.execute(command)
        assert getattr(outcome, "replayed", True) or isinstance(outcome, BatchRecorded)
        assert self.ledger.app.event_log.head() == before
        assert self.live_balances() == balances

    # Invariants.

    def live_balances(self) -> dict[UUID, int]:
        return {account: self.ledger.balance(account) for account in self.model.balances}

    @invariant()
    def balances_match_the_model_and_sum_to_zero(self):
        live = self.live_balances()
        assert live == self.model.balances
        assert sum(live.values()) == 0

    @invariant()
    def no_available_balance_is_negative(self):
        for account in self.model.balances:
            stored = self.ledger.app.account(account)
            assert stored.held == self.model.held.get(account, 0)
            if account != ISSUANCE_ID:
                assert stored.available >= 0

    @invariant()
    def a_fresh_replay_equals_the_live_state(self):
        replayed = replay_balances(self.ledger.app)
        assert replayed == {a: b for a, b in self.model.balances.items()}
        fresh = LedgerApplication(self.store.env)
        try:
            for account in self.model.balances:
                assert fresh.account(account).balance == self.model.balances[account]
        finally:
            fresh.close()


def replay_balances(app: LedgerApplication) -> dict[UUID, int]:
    """Fold the whole notification log, ignoring snapshots and caches."""
    balances: dict[UUID, int] = {}
    position = 0
    while True:
        page = app.recorder.select_notifications(start=position + 1, limit=500)
        if not page:
            return balances
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, Account.Opened):
                balances[event.originator_id] = 0
            elif isinstance(event, (Account.Debited, Account.HoldCaptured)):
                balances[event.originator_id] -= event.amount
            elif isinstance(event, Account.Credited):
                balances[event.originator_id] += event.amount
        position = page[-1].id


def _sqlite_factory():
    folder = Path(tempfile.mkdtemp())
    return sqlite_store(folder), lambda: shutil.rmtree(folder, ignore_errors=True)


def test_the_ledger_behaves_like_the_model_on_sqlite():
    run_state_machine_as_test(
        lambda: LedgerMachine(_sqlite_factory),
        settings=settings(max_examples=EXAMPLES, stateful_step_count=25, deadline=None, phases=NO_SHRINK,
                          suppress_health_check=list(HealthCheck)),
    )


@pytest.mark.postgres
def test_the_ledger_behaves_like_the_model_on_postgres(postgres_database):
    if isinstance(postgres_database, Exception):
        unreachable("PostgreSQL", postgres_database)
    database: PostgresTestDatabase = postgres_database

    def factory():
        folder = Path(tempfile.mkdtemp())
        schema = database.new_schema()

        def cleanup():
            database.drop_schema(schema)
            shutil.rmtree(folder, ignore_errors=True)

        return postgres_store(folder, database.url, schema), cleanup

    run_state_machine_as_test(
        lambda: LedgerMachine(factory),
        settings=settings(max_examples=max(EXAMPLES // 2, 5), stateful_step_count=20, deadline=None,
                          phases=NO_SHRINK,
                          suppress_health_check=list(HealthCheck)),
    )
