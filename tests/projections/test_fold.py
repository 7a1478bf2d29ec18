"""The read models equal a fold of the events, for random histories.

The oracle is the domain itself: each aggregate, loaded from the event
store, is the library's fold of that aggregate's events. After any sequence
of commands (transfers, fees, holds captured, voided and expired,
reversals, freezes, wallets), every account's balance, held amount and
history, and every transfer's status, read from the read models must agree
with the aggregates; and an audit replay must find nothing to report.
"""

from __future__ import annotations

import contextlib
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from application import commands as c
from domain.account import Account
from domain.errors import LedgerError
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from domain.transfer import PENDING
from projections.ledger_fold import Keys

ACCOUNTS = 4
index = st.integers(0, ACCOUNTS - 1)
amount = st.integers(1, 5_000)
operation = st.one_of(
    st.tuples(st.just("transfer"), index, index, amount),
    st.tuples(st.just("fee"), index, st.sampled_from(["search", "goal", "analysis"])),
    st.tuples(st.just("reward"), index, amount),
    st.tuples(st.just("hold"), index, amount, st.integers(1, 120)),
    st.tuples(st.just("capture"), st.integers(0, 9), st.integers(0, 5_000)),
    st.tuples(st.just("void"), st.integers(0, 9)),
    st.tuples(st.just("expire"), st.integers(0, 9), st.integers(1, 200)),
    st.tuples(st.just("reverse"), st.integers(0, 9)),
    st.tuples(st.just("freeze"), index),
    st.tuples(st.just("unfreeze"), index),
    st.tuples(st.just("burn"), index, amount),
    st.tuples(st.just("wallet"), index),
)


class History:
    """Turns generated operations into commands against the test ledger."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger
        self.accounts = [ledger.open_account(funded=20_000) for _ in range(ACCOUNTS)]
        self.holds: list = []
        self.transfers: list = []
        self.wallets: dict[int, str] = {}

    def run(self, op: tuple) -> None:
        # A refusal writes nothing; the read models must show that too.
        with contextlib.suppress(LedgerError):
            self._run(op)

    def _run(self, op: tuple) -> None:
        kind, a = op[0], self.accounts
        if kind == "transfer":
            transfer_id = uuid4()
            self.ledger.execute(c.TransferFunds(transfer_id, a[op[1]], a[op[2]], op[3], "t"))
            self.transfers.append(transfer_id)
        elif kind == "fee":
            self.ledger.execute(c.ChargeFee(uuid4(), a[op[1]], op[2]))
        elif kind == "reward":
            self.ledger.execute(c.DistributeReward(uuid4(), a[op[1]], "bonus", op[2]))
        elif kind == "hold":
            hold_id = uuid4()
            self.ledger.execute(c.PlaceHold(hold_id, a[op[1]], amount=op[2], expires_in_s=op[3]))
            self.holds.append(hold_id)
        elif kind in ("capture", "void", "expire", "reverse"):
            self._second_phase(op)
        elif kind == "freeze":
            self.ledger.execute(c.FreezeAccount(a[op[1]]))
        elif kind == "unfreeze":
            self.ledger.execute(c.UnfreezeAccount(a[op[1]]))
        elif kind == "burn":
            self.ledger.execute(c.Burn(uuid4(), a[op[1]], op[2]))
        elif kind == "wallet":
            self._wallet(op[1])

    def _second_phase(self, op: tuple) -> None:
        kind = op[0]
        if kind == "reverse":
            if self.transfers:
                original = self.transfers[op[1] % len(self.transfers)]
                self.ledger.execute(c.ReverseTransfer(uuid4(), original, "undo"))
            return
        if not self.holds:
            return
        hold_id = self.holds[op[1] % len(self.holds)]
        if kind == "capture":
            self.ledger.execute(c.CaptureHold(hold_id, op[2] or None))
            self.transfers.append(hold_id)
        elif kind == "void":
            self.ledger.execute(c.VoidHold(hold_id))
        else:
            self.ledger.clock.advance(op[2])
            self.ledger.execute(c.ExpireHold(hold_id))

    def _wallet(self, i: int) -> None:
        account = self.accounts[i]
        if i in self.wallets:
            self.ledger.execute(c.DisconnectWallet(account, self.wallets.pop(i)))
        else:
            address = str(Keypair().pubkey())
            self.ledger.execute(c.ConnectWallet(account, address))
            self.wallets[i] = address


def expired_unswept(ledger, account: Account) -> int:
    """Held amounts of holds past their expiry that no sweeper released yet."""
    total = 0
    for hold_hex, held in account.holds.items():
        hold = ledger.app.transfer(UUID(hex=hold_hex))
        if hold.phase == PENDING and hold.is_expired_at(ledger.clock()):
            total += held
    return total


def assert_read_models_match_aggregates(ledger, read_side, history: History) -> None:
    queries = read_side.queries
    for account_id in [*history.accounts, TREASURY_ID, REWARDS_ID, ISSUANCE_ID]:
        account = ledger.app.account(account_id)
        view = queries.balance(account_id)
        held = account.held - expired_unswept(ledger, account)
        assert (view.balance, view.held, view.available) == (
            account.balance, held, account.balance - held)
        if account_id in history.accounts:
            assert_history_chains(queries, account_id, account.balance)
    rows = read_side.store.load(Keys(set(), {t.hex for t in [*history.transfers, *history.holds]},
                                     set(), set())).transactions
    for transfer_id in [*history.transfers, *history.holds]:
        transfer = ledger.app.transfer(transfer_id)
        view = queries.transfer(transfer_id)
        assert view.status == transfer.status
        assert rows[transfer_id.hex].settlement == transfer.settlement_status
        assert view.amount == (transfer.posted_amount or transfer.amount)
        assert view.reversed_by == transfer.reversed_by


def assert_history_chains(queries, account_id, balance: int) -> None:
    items, cursor = [], None
    while True:
        page = queries.history(account_id, limit=7, cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    running = 0
    for item in items:
        assert item.balance_before == running
        assert item.balance_after == running + item.change
        running = item.balance_after
    assert running == balance
    assert [i.position for i in items] == sorted({i.position for i in items})


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_read_models_equal_a_fold_of_the_events(ledger, read_side, operations):
    history = History(ledger)
    for op in operations:
        history.run(op)
    read_side.projector.catch_up()
    assert_read_models_match_aggregates(ledger, read_side, history)
    report = read_side.queries.audit_replay()
    assert report.mismatches == []
    assert report.supply_ok and report.first_tampered_position is None
