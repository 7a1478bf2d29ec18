"""A repeated command answers exactly its first answer, for every command
kind a caller can send, after the state it answered about has moved on
(settled, reversed, captured, spent, re-priced), in this process and in
another one that never cached anything. On SQLite and PostgreSQL.

Given a command and its first outcome, when the ledger changes and the same
command comes again, then the outcome equals the first (status, amounts,
balances, position), flagged as a replay, and the log does not grow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair

from application import commands as c
from application.outcomes import BatchRecorded, Outcome
from domain.amounts import UNITS_PER_DEAL
from tests.support.ledgers import SYSTEM_IDS, LedgerHarness

DEAL = UNITS_PER_DEAL


def settle(ledger: LedgerHarness, *transfer_ids: UUID) -> None:
    ledger.settle(*transfer_ids)


def assert_repeat_answers_first(ledger: LedgerHarness, command: c.Command, first: Outcome,
                                *, again: LedgerHarness | None = None) -> Outcome:
    """``command`` again (on ``again``, another process, when given) answers
    ``first`` exactly, flagged as a replay, and writes nothing."""
    runner = again or ledger
    before = runner.app.event_log.head()
    repeat = runner.execute(command)
    assert runner.app.event_log.head() == before
    assert repeat.replayed and not first.replayed
    assert unflagged(repeat) == unflagged(first)
    return repeat


def unflagged(outcome: Outcome) -> Outcome:
    """The outcome as a caller reads it; whether it (or a batch's item) was
    a replay is told apart (HTTP: the status and a header), not compared."""
    if isinstance(outcome, BatchRecorded):
        outcome = replace(outcome, results=tuple(
            replace(item, outcome=item.outcome and replace(item.outcome, replayed=False))
            for item in outcome.results))
    return replace(outcome, replayed=False)


@dataclass
class Case:
    """A command, what it needs first, and what changes the world after it."""

    kind: type[c.Command]
    prepare: Callable[[LedgerHarness], c.Command]
    later: Callable[[LedgerHarness, c.Command], None]

    @property
    def name(self) -> str:
        return self.kind.kind


def _transfer(ledger):
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    return c.TransferFunds(uuid4(), source, destination, 3 * DEAL, "rent")


def _settle_and_move_on(ledger, command):
    """Settle the movement, then move more money through both accounts."""
    settle(ledger, command.command_id)
    ledger.execute(c.Mint(uuid4(), _source_of(ledger, command), DEAL))


def _source_of(ledger, command) -> UUID:
    """The user account the movement touched."""
    transfer = ledger.app.transfer(command.command_id)
    return transfer.source if transfer.destination in SYSTEM_IDS else transfer.destination


def _transfer_from(ledger):
    owner, spender, destination = (ledger.open_account(10 * DEAL), ledger.open_account(),
                                   ledger.open_account())
    ledger.execute(c.SetAllowance(owner, spender, 5 * DEAL))
    return c.TransferFrom(uuid4(), spender, owner, destination, 2 * DEAL, "agent")


def _fee(ledger):
    return c.ChargeFee(uuid4(), ledger.open_account(10 * DEAL), "search")


def _fee_later(ledger, command):
    ledger.execute(c.SetPriceRule("search", 3 * DEAL))
    _settle_and_move_on(ledger, command)


def _reward(ledger):
    return c.DistributeReward(uuid4(), ledger.open_account(), "referral", 2 * DEAL)


def _mint(ledger):
    return c.Mint(uuid4(), ledger.open_account(), 4 * DEAL, "grant")


def _burn(ledger):
    return c.Burn(uuid4(), ledger.open_account(4 * DEAL), DEAL, "redeem")


def _withdraw(ledger):
    account, address = ledger.open_account(4 * DEAL), str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(account, address))
    return c.Withdraw(uuid4(), account, DEAL, address)


def _withdraw_later(ledger, command):
    """Settled, the wallet disconnected: a repeat still answers the first answer."""
    _settle_and_move_on(ledger, command)
    ledger.execute(c.DisconnectWallet(command.account_id, command.address))


def _reverse(ledger):
    original = _transfer(ledger)
    ledger.execute(original)
    settle(ledger, original.transfer_id)
    return c.ReverseTransfer(uuid4(), original.transfer_id, "mistake")


def _reverse_later(ledger, command):
    settle(ledger, command.reversal_id)


def _open(ledger):
    return c.OpenAccount(uuid4())


def _open_later(ledger, command):
    ledger.execute(c.Mint(uuid4(), command.account_id, DEAL))
    ledger.execute(c.FreezeAccount(command.account_id))


def _hold(ledger):
    return c.PlaceHold(uuid4(), ledger.open_account(10 * DEAL), amount=2 * DEAL)


def _hold_later(ledger, command):
    """Another hold lowers what is available; the hold is captured and settled."""
    ledger.execute(c.PlaceHold(uuid4(), command.account_id, amount=DEAL))
    ledger.execute(c.CaptureHold(command.hold_id, DEAL))
    settle(ledger, command.hold_id)


def _capture(ledger):
    hold = _hold(ledger)
    ledger.execute(hold)
    return c.CaptureHold(hold.hold_id, DEAL)


def _capture_later(ledger, command):
    settle(ledger, command.hold_id)
    ledger.execute(c.ReverseTransfer(uuid4(), command.hold_id, "refund"))


def _void(ledger):
    hold = _hold(ledger)
    ledger.execute(hold)
    return c.VoidHold(hold.hold_id)


def _void_later(ledger, command):
    account = ledger.app.transfer(command.hold_id).source
    ledger.execute(c.PlaceHold(uuid4(), account, amount=DEAL))


def _freeze(ledger):
    account = ledger.open_account(5 * DEAL)
    ledger.execute(c.PlaceHold(HOLD_BEFORE_FREEZE, account, amount=DEAL, expires_in_s=1))
    return c.FreezeAccount(account)


HOLD_BEFORE_FREEZE = uuid4()


def _freeze_later(ledger, command):
    """The frozen account's hold expires: the account moves on."""
    ledger.clock.advance(2)
    ledger.execute(c.ExpireHold(HOLD_BEFORE_FREEZE))


def _unfreeze(ledger):
    account = ledger.open_account(5 * DEAL)
    ledger.execute(c.FreezeAccount(account))
    return c.UnfreezeAccount(account)


def _unfreeze_later(ledger, command):
    ledger.execute(c.Mint(uuid4(), command.account_id, DEAL))


def _allowance(ledger):
    return c.SetAllowance(ledger.open_account(5 * DEAL), ledger.open_account(), 2 * DEAL)


def _allowance_later(ledger, command):
    ledger.execute(c.Mint(uuid4(), command.owner, DEAL))
    ledger.execute(c.SetAllowance(command.owner, ledger.open_account(), DEAL))


def _price(ledger):
    return c.SetPriceRule("goal", 2 * DEAL)


def _price_later(ledger, command):
    ledger.execute(c.SetPriceRule("analysis", 3 * DEAL))
    ledger.execute(c.ChargeFee(uuid4(), ledger.open_account(10 * DEAL), "goal"))


def _batch(ledger):
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    return c.TransferBatch(tuple(
        c.TransferFunds(uuid4(), source, destination, DEAL) for _ in range(3)), atomic=True)


def _batch_later(ledger, command):
    settle(ledger, *(item.transfer_id for item in command.transfers[:2]))
    ledger.execute(c.TransferFunds(uuid4(), command.transfers[0].source,
                                   command.transfers[0].destination, DEAL))


CASES = [
    Case(c.TransferFunds, _transfer, _settle_and_move_on),
    Case(c.TransferFrom, _transfer_from, _settle_and_move_on),
    Case(c.ChargeFee, _fee, _fee_later),
    Case(c.DistributeReward, _reward, _settle_and_move_on),
    Case(c.Mint, _mint, _settle_and_move_on),
    Case(c.Burn, _burn, _settle_and_move_on),
    Case(c.Withdraw, _withdraw, _withdraw_later),
    Case(c.ReverseTransfer, _reverse, _reverse_later),
    Case(c.OpenAccount, _open, _open_later),
    Case(c.PlaceHold, _hold, _hold_later),
    Case(c.CaptureHold, _capture, _capture_later),
    Case(c.VoidHold, _void, _void_later),
    Case(c.FreezeAccount, _freeze, _freeze_later),
    Case(c.UnfreezeAccount, _unfreeze, _unfreeze_later),
    Case(c.SetAllowance, _allowance, _allowance_later),
    Case(c.SetPriceRule, _price, _price_later),
    Case(c.TransferBatch, _batch, _batch_later),
]

ELSEWHERE: dict[type[c.Command], str] = {
    c.CreditDeposit: "tests/settlement/test_deposits.py (a rescan answers the first credit)",
    c.AssignDeposit: "tests/settlement/test_deposits.py (needs an unassigned deposit)",
    c.ReturnDeposit: "tests/settlement/test_deposit_returns.py (needs an unassigned deposit)",
    c.AdjustForFinding: "tests/settlement/test_reconciliation.py (needs a finding on record)",
    c.RetryCompensation: "tests/settlement/test_reconciliation.py (needs a blocked compensation)",
    c.ConnectWallet: "no id: a repeat is 409 wallet_already_connected (API.md)",
    c.DisconnectWallet: "no id: a repeat is 404 wallet_not_found",
    c.DeactivatePriceRule: "no id: a repeat answers Idempotent-Replayed, as of the schedule's "
                           "latest change (tests/interface/test_price_rules.py)",
}
"""Commands callers send whose repeats are covered elsewhere, or refused."""

INTERNAL = {
    c.Genesis, c.ExpireHold, c.RecordSubmission, c.MarkSettled, c.MarkSettlementRejected,
    c.MarkSettlementFailed, c.RecordGenesisSettlement, c.RecordAnchor, c.ResignAnchor,
    c.ConfirmAnchor, c.StartReconciliation, c.RecordFindings, c.FinishReconciliation,
}
"""The ledger's own steps: no caller sees their answers."""


def test_every_command_a_caller_sends_has_a_replay_case():
    """A new command names itself here until a case shows its repeats."""
    from application.handlers import HANDLERS

    covered = {case.kind for case in CASES} | set(ELSEWHERE) | INTERNAL
    assert set(HANDLERS) - covered == set()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_repeat_after_the_state_moved_on_answers_the_first_outcome(ledger, case):
    command = case.prepare(ledger)
    first = ledger.execute(command)
    case.later(ledger, command)
    assert_repeat_answers_first(ledger, command, first)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_another_process_answers_a_repeat_from_the_log(ledger, store, case):
    """A process that never saw the command (a restart, a second server)
    answers the repeat from what the first execution committed."""
    command = case.prepare(ledger)
    first = ledger.execute(command)
    case.later(ledger, command)
    other = LedgerHarness(store.env, genesis=False)
    try:
        assert_repeat_answers_first(ledger, command, first, again=other)
    finally:
        other.close()


def test_the_first_answer_of_a_transfer_stays_pending_after_it_settled(ledger):
    command = _transfer(ledger)
    first = ledger.execute(command)
    settle(ledger, command.transfer_id)
    assert ledger.app.transfer(command.transfer_id).status == "settled"
    repeat = ledger.execute(command)
    assert (first.status, repeat.status) == ("pending", "pending")
    assert repeat.position == first.position < ledger.app.event_log.head()


def test_a_repeated_hold_answers_what_was_available_when_it_was_placed(ledger):
    command = _hold(ledger)
    first = ledger.execute(command)
    ledger.execute(c.PlaceHold(uuid4(), command.account_id, amount=DEAL))
    assert ledger.execute(command).available == first.available == 8 * DEAL


def test_a_batch_with_a_refused_item_is_a_new_attempt_for_that_item(ledger):
    """A refusal leaves no trace, so repeating the batch retries the refused
    item (which may now pass); the items applied the first time replay."""
    source, destination = ledger.open_account(DEAL), ledger.open_account()
    items = (c.TransferFunds(uuid4(), source, destination, DEAL),
             c.TransferFunds(uuid4(), source, destination, DEAL))
    batch = c.TransferBatch(items, atomic=False)
    first = ledger.execute(batch)
    assert [r.error is None for r in first.results] == [True, False]
    ledger.execute(c.Mint(uuid4(), source, DEAL))
    repeat = ledger.execute(batch)
    assert not repeat.replayed
    assert repeat.results[0].outcome == replace(first.results[0].outcome, replayed=True)
    assert repeat.results[1].error is None and not repeat.results[1].outcome.replayed
    assert ledger.balance(destination) == 2 * DEAL


def test_a_batch_position_is_its_latest_movement_whatever_the_item_order(ledger):
    """An item recorded earlier (a replay inside the batch) does not lower
    the batch's position, the first time or on a repeat."""
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    earlier = c.TransferFunds(uuid4(), source, destination, DEAL)
    ledger.execute(earlier)
    batch = c.TransferBatch((c.TransferFunds(uuid4(), source, destination, DEAL), earlier))
    first = ledger.execute(batch)
    assert first.position == ledger.app.event_log.head()
    ledger.execute(c.TransferFunds(uuid4(), source, destination, DEAL))
    assert_repeat_answers_first(ledger, batch, first)


def test_commands_of_one_group_commit_answer_its_end_and_repeats_find_it(ledger):
    """Two commands decided and committed together: each answer's position
    is where that commit ends, so the state at it holds the command (a cut
    inside a commit rounds down, before it); a repeat finds the same end
    from the command's own event."""
    source, destination = ledger.open_account(10 * DEAL), ledger.open_account()
    first, second = (c.TransferFunds(uuid4(), source, destination, amount)
                     for amount in (DEAL, 2 * DEAL))
    answers = ledger.processor.process([first, second])
    head = ledger.app.event_log.head()
    assert [answer.position for answer in answers] == [head, head]
    ledger.execute(c.TransferFunds(uuid4(), source, destination, DEAL))
    for command, answer in zip((first, second), answers, strict=True):
        assert_repeat_answers_first(ledger, command, answer)
