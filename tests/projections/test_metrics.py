"""Metrics: command counts and latency from the writer's batches, the
projection's lag, supply and holds; no label names a user; several
processes add up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from uuid import uuid4

import pytest

from application import commands as c
from domain.amounts import INITIAL_SUPPLY, UNITS_PER_DEAL
from domain.errors import InsufficientBalance
from projections import ledger_metrics as metrics
from tests.interface.cli_support import REPO


def value(metric, *labels) -> float:
    target = metric.labels(*labels) if labels else metric
    return target._value.get()


def histogram_count(metric, *labels) -> float:
    return sum(b.get() for b in metric.labels(*labels)._buckets)


def test_commands_are_counted_by_type_and_outcome_with_their_latency(ledger, read_side):
    ledger.writer.add_observer(read_side.on_batch)
    source, destination = ledger.open_account(100), ledger.open_account()
    ok, refused = value(metrics.TRANSACTIONS, "transfer", "ok"), value(
        metrics.TRANSACTIONS, "transfer", "insufficient_balance")
    timed = histogram_count(metrics.TRANSACTION_DURATION, "transfer")
    ledger.execute(c.TransferFunds(uuid4(), source, destination, 60))
    with pytest.raises(InsufficientBalance):
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 60))
    assert value(metrics.TRANSACTIONS, "transfer", "ok") == ok + 1
    assert value(metrics.TRANSACTIONS, "transfer", "insufficient_balance") == refused + 1
    assert histogram_count(metrics.TRANSACTION_DURATION, "transfer") == timed + 2


def test_lag_supply_and_holds_follow_the_projection(ledger, read_side):
    account = ledger.open_account(5 * UNITS_PER_DEAL)
    ledger.execute(c.PlaceHold(uuid4(), account, amount=UNITS_PER_DEAL, expires_in_s=60))
    projector = read_side.projector
    projector.page_events = 3
    projector.run_once()
    assert value(metrics.PROJECTION_LAG_EVENTS, "read_models") > 0
    projector.catch_up()
    assert value(metrics.PROJECTION_LAG_EVENTS, "read_models") == 0
    assert value(metrics.PROJECTION_LAG_SECONDS, "read_models") == 0
    assert value(metrics.HOLDS_OUTSTANDING) == 1
    assert value(metrics.HOLDS_OUTSTANDING_DEAL) == 1.0


def test_the_exposition_names_no_account(ledger, read_side):
    ledger.writer.add_observer(read_side.on_batch)
    account = ledger.open_account(10)
    read_side.projector.catch_up()
    text, content_type = metrics.exposition()
    assert b"token_transactions_total" in text and b"projection_lag_events" in text
    assert account.hex.encode() not in text and str(account).encode() not in text
    assert content_type.startswith("text/plain")


_CHILD = """
from projections import ledger_metrics as metrics
metrics.TRANSACTIONS.labels("transfer", "ok").inc()
metrics.PROJECTION_LAG_EVENTS.labels("read_models").set({lag})
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for lag in (3, 7):
        subprocess.run([sys.executable, "-c", _CHILD.format(lag=lag)], cwd=REPO, env=env,
                       check=True, timeout=60)
    reader = subprocess.run(
        [sys.executable, "-c", "from projections import ledger_metrics as metrics; "
         "import sys; sys.stdout.write(metrics.exposition()[0].decode())"],
        cwd=REPO, env=env, check=True, timeout=60, capture_output=True, text=True,
    )
    lines = reader.stdout.splitlines()
    assert 'token_transactions_total{status="ok",type="transfer"} 2.0' in lines


USER_KINDS = {
    "open_account", "freeze_account", "unfreeze_account", "transfer", "transfer_batch",
    "transfer_from", "set_allowance", "charge_fee", "distribute_reward", "mint", "burn",
    "reverse_transfer", "place_hold", "capture_hold", "void_hold", "connect_wallet",
    "disconnect_wallet", "set_price_rule", "deactivate_price_rule", "adjust_for_finding",
    "withdraw", "assign_deposit", "return_deposit",
}


def _command_kinds() -> set[str]:
    found, pending = set(), [c.Command]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not c.Command:
            found.add(cls.kind)
    return found


def test_every_command_kind_is_a_user_command_or_an_internal_step():
    kinds = _command_kinds()
    unclassified = kinds - USER_KINDS - metrics.INTERNAL_KINDS
    assert not unclassified, f"add to metrics.INTERNAL_KINDS or to USER_KINDS: {unclassified}"
    assert not USER_KINDS & metrics.INTERNAL_KINDS


def test_internal_steps_are_not_counted_as_user_transactions():
    from types import SimpleNamespace

    steps, users = (value(metrics.INTERNAL_STEPS, "mark_settled", "ok"),
                    value(metrics.TRANSACTIONS, "mark_settled", "ok"))
    fees = value(metrics.TRANSACTIONS, "charge_fee", "ok")
    report = SimpleNamespace(
        commands=[SimpleNamespace(kind="mark_settled"), SimpleNamespace(kind="charge_fee")],
        results=[object(), object()], waited_s=[0.0, 0.0], duration_s=0.001)
    metrics.observe_batch(report)
    assert value(metrics.INTERNAL_STEPS, "mark_settled", "ok") == steps + 1
    assert value(metrics.TRANSACTIONS, "mark_settled", "ok") == users
    assert value(metrics.TRANSACTIONS, "charge_fee", "ok") == fees + 1


def test_system_balances_by_account_kind_are_read_from_the_read_models(ledger, read_side):
    from domain.system import REWARDS_FUNDING
    from projections.system_balance_metrics import SystemBalances

    ledger.open_account(7 * UNITS_PER_DEAL)
    read_side.projector.catch_up()
    collector = SystemBalances()
    assert list(collector.collect()) == []  # nothing watched: no value rather than a false one
    collector.watch(read_side.queries)
    samples = {sample.labels.get("account_kind", sample.name): sample.value
               for family in collector.collect() for sample in family.samples}
    circulating = (INITIAL_SUPPLY + 7 * UNITS_PER_DEAL) / UNITS_PER_DEAL
    assert samples == {"circulating_supply": circulating, "circulating_supply_deal": circulating,
                       "rewards_pool": REWARDS_FUNDING / UNITS_PER_DEAL,
                       "treasury": (INITIAL_SUPPLY - REWARDS_FUNDING) / UNITS_PER_DEAL}
