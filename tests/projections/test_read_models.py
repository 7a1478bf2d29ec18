"""What the queries answer: pages, holds, transfers, wallets, pricing and
raw events, from the read models."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from solders.keypair import Keypair

from application import commands as c
from domain.errors import AccountNotFound, InvalidRequest, TransferNotFound
from domain.pricing import PRICES_DEFAULT
from projections.cursors import encode_cursor


def project(read_side):
    read_side.projector.catch_up()
    return read_side.queries


def test_history_pages_oldest_first_without_gaps_or_repeats(ledger, read_side):
    source, destination = ledger.open_account(1_000), ledger.open_account()
    for amount in range(1, 24):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, amount, f"#{amount}"))
    queries = project(read_side)
    seen, cursor = [], None
    while True:
        page = queries.history(destination, limit=5, cursor=cursor)
        assert len(page.items) <= 5
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [item.change for item in seen] == list(range(1, 24))
    assert [item.reason for item in seen] == [f"#{n}" for n in range(1, 24)]
    assert seen[-1].balance_after == sum(range(1, 24))
    assert {item.type for item in seen} == {"transfer"}


def test_a_page_boundary_at_the_very_end_has_no_next_cursor(ledger, read_side):
    account = ledger.open_account(10)  # one mint credit
    page = project(read_side).history(account, limit=1)
    assert len(page.items) == 1 and page.next_cursor is None


@pytest.mark.parametrize("cursor", ["not-base64!", "eHl6",
                                    encode_cursor("history", uuid4(), 5)[:-1] + "%"])
def test_a_cursor_the_service_did_not_issue_is_refused(ledger, read_side, cursor):
    account = ledger.open_account(10)
    with pytest.raises(InvalidRequest):
        project(read_side).history(account, cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_page_size_out_of_bounds_is_refused(ledger, read_side, limit):
    account = ledger.open_account(10)
    with pytest.raises(InvalidRequest):
        project(read_side).transactions(account, limit=limit)


def test_unknown_accounts_and_transfers_are_not_found(ledger, read_side):
    queries = project(read_side)
    with pytest.raises(AccountNotFound):
        queries.balance(uuid4())
    with pytest.raises(AccountNotFound):
        queries.history(uuid4())
    with pytest.raises(TransferNotFound):
        queries.transfer(uuid4())


def test_transactions_list_both_sides_of_an_account_in_log_order(ledger, read_side):
    alice, bob = ledger.open_account(1_000), ledger.open_account(1_000)
    ids = []
    for i in range(7):
        transfer_id = uuid4()
        source, destination = (alice, bob) if i % 2 else (bob, alice)
        ledger.execute(c.TransferFunds(transfer_id, source, destination, 10 + i, "x"))
        ids.append(transfer_id)
    queries = project(read_side)
    first = queries.transactions(alice, limit=4)
    second = queries.transactions(alice, limit=4, cursor=first.next_cursor)
    listed = [t.transfer_id for t in first.items + second.items]
    assert listed[1:] == ids and listed[0] != ids[0]  # the funding mint comes first
    assert second.next_cursor is None
    assert [t.position for t in first.items + second.items] == sorted(
        t.position for t in first.items + second.items)


def test_an_expired_hold_is_not_held_even_before_the_sweeper_releases_it(ledger, read_side):
    account = ledger.open_account(1_000)
    soon, later = uuid4(), uuid4()
    ledger.execute(c.PlaceHold(soon, account, amount=300, expires_in_s=60))
    ledger.execute(c.PlaceHold(later, account, amount=200, expires_in_s=600))
    queries = project(read_side)
    assert (queries.balance(account).held, queries.balance(account).available) == (500, 500)
    ledger.clock.advance(60)
    view = queries.balance(account)
    assert (view.balance, view.held, view.available) == (1_000, 200, 800)
    assert queries.due_holds(ledger.clock()) == [soon]
    due = queries.transfer(soon)
    assert (due.hold_status, due.status) == ("expired", "settled")  # one answer, sweep or not
    assert (queries.transfer(later).hold_status, queries.transfer(later).status) == (
        "pending", "pending")
    ledger.execute(c.ExpireHold(soon))
    queries = project(read_side)
    swept = queries.transfer(soon)
    assert (swept.hold_status, swept.status) == (due.hold_status, due.status)
    assert queries.due_holds(ledger.clock()) == []
    assert queries.balance(account).held == 200


def test_a_captured_hold_posts_its_amount_and_releases_the_rest(ledger, read_side):
    account = ledger.open_account(1_000)
    hold = uuid4()
    ledger.execute(c.PlaceHold(hold, account, amount=300, expires_in_s=60))
    ledger.execute(c.CaptureHold(hold, 120))
    queries = project(read_side)
    view = queries.balance(account)
    assert (view.balance, view.held, view.available) == (880, 0, 880)
    transfer = queries.transfer(hold)
    assert (transfer.amount, transfer.hold_status, transfer.kind) == (120, "captured", "fee")
    last = queries.history(account).items[-1]
    assert (last.change, last.type, last.balance_before, last.balance_after) == (
        -120, "fee", 1_000, 880)


def test_settlement_and_reversal_show_in_the_transfer_status(ledger, read_side):
    source, destination = ledger.open_account(1_000), ledger.open_account()
    settled, failed = uuid4(), uuid4()
    ledger.execute(c.TransferFunds(settled, source, destination, 10))
    ledger.execute(c.TransferFunds(failed, source, destination, 20))
    now = ledger.clock()
    for transfer_id, finish in ((settled, "settle"), (failed, "fail")):
        transfer = ledger.app.transfer(transfer_id)
        transfer.submit_settlement("sig-" + transfer_id.hex[:8], 99, now)
        if finish == "settle":
            transfer.settle("sig-" + transfer_id.hex[:8], 1234, now)
        else:
            transfer.fail_settlement(None, "blockhash expired", now)
        ledger.app.save(transfer)
    reversal = uuid4()
    ledger.execute(c.ReverseTransfer(reversal, failed, "chain failed", settles_on_chain=False))
    queries = project(read_side)
    done = queries.transfer(settled)
    assert (done.status, done.signature, done.slot) == ("settled", "sig-" + settled.hex[:8], 1234)
    undone = queries.transfer(failed)
    assert (undone.status, undone.reversed_by) == ("reversed", reversal)
    compensation = queries.transfer(reversal)
    assert (compensation.kind, compensation.reverses, compensation.status) == (
        "reversal", failed, "settled")
    for transfer_id in (settled, failed, reversal):
        assert queries.transfer(transfer_id).status == ledger.app.transfer(transfer_id).status


def test_wallets_show_connections_and_disconnections(ledger, read_side):
    account = ledger.open_account()
    first, second = str(Keypair().pubkey()), str(Keypair().pubkey())
    ledger.execute(c.ConnectWallet(account, first))
    ledger.clock.advance(5)
    ledger.execute(c.ConnectWallet(account, second))
    disconnected_at = ledger.clock.now  # the commit's reading of the clock
    ledger.execute(c.DisconnectWallet(account, first))
    wallets = {w.address: w for w in project(read_side).wallets(account).items}
    assert wallets[first].status == "disconnected"
    assert wallets[first].disconnected_at == disconnected_at
    assert wallets[second].status == "connected" and wallets[second].disconnected_at is None


def test_pricing_shows_the_cost_now_and_every_rule(ledger, read_side):
    now = ledger.clock()
    ledger.execute(c.SetPriceRule("goal", 5, valid_from=now + timedelta(hours=1)))
    ledger.execute(c.SetPriceRule("search", 7))
    prices = {p.service_type: p for p in project(read_side).pricing(now).items}
    assert prices["search"].token_cost_now == 7
    assert prices["goal"].token_cost_now == PRICES_DEFAULT["goal"]
    assert [r.token_cost for r in prices["goal"].rules] == [5]
    later = {p.service_type: p
             for p in read_side.queries.pricing(now + timedelta(hours=2)).items}
    assert later["goal"].token_cost_now == 5


def test_audit_events_come_raw_in_log_order(ledger, read_side):
    account = ledger.open_account(10)
    queries = read_side.queries
    events = queries.audit_events(aggregate_id=account).items
    assert [e.version for e in events] == [1, 2]
    assert events[0].topic == "domain.account:Account.Opened"
    assert events[1].state["amount"] == 10
    assert UUID(events[1].state["transfer_id"])


def test_audit_event_pages_hold_whole_commits(ledger, read_side):
    account = ledger.open_account(10)
    queries = read_side.queries
    genesis_end = queries.audit_events(aggregate_id=account).items[0].position - 1
    assert genesis_end > 3  # genesis is one commit of several events
    page = queries.audit_events(after_position=2, limit=3)
    assert page.after_position == 0  # a cut inside genesis: rounded down to before it
    assert [e.position for e in page.items] == list(range(1, genesis_end + 1))  # all of it
    assert page.next_after_position == genesis_end
    rest = queries.audit_events(after_position=genesis_end, limit=1)
    assert rest.after_position == genesis_end
    assert [e.position for e in rest.items] == [genesis_end + 1]  # the opening, a commit alone
