"""Audit replay: it equals the live read models, notices when a read model,
the log or the cache was changed behind the ledger's back, and reports the
first tampered position of the stored event log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from application import commands as c
from domain.system import SYSTEM_ACCOUNTS
from projections.rows import TransactionRow, columns
from projections.runtime import ReadSide
from tests.support.ledgers import LedgerHarness
from tests.support.raw_events import RawEvents
from tests.support.services import pg_connect


def history(ledger, transfers: int = 20):
    source, destination = ledger.open_account(10_000), ledger.open_account()
    positions = [
        ledger.execute(c.TransferFunds(uuid4(), source, destination, 3, f"n{i}")).position
        for i in range(transfers)
    ]
    return source, destination, positions


@pytest.fixture
def raw_events(ledger, store) -> RawEvents:
    return RawEvents(ledger, store)


def test_a_replay_of_the_whole_log_equals_the_live_read_models(ledger, read_side):
    history(ledger)
    read_side.projector.catch_up()
    report = read_side.queries.audit_replay()
    assert report.mismatches == [] and report.supply_ok
    assert report.events_replayed == report.last_position == ledger.app.event_log.head()
    assert report.accounts == len(SYSTEM_ACCOUNTS) + 2 and report.first_tampered_position is None


def test_a_replay_finds_a_read_model_row_changed_behind_its_back(ledger, read_side):
    _, destination, _ = history(ledger)
    read_side.projector.catch_up()
    store = read_side.store
    with store._cursor(commit=True) as cursor:
        cursor.execute(store.sql(
            "UPDATE {balances} SET balance = balance + 1 WHERE account_id = ?"
        ), (destination.hex,))
        cursor.execute(store.sql(
            "UPDATE {balance_history} SET reason = 'forged' WHERE position = "
            "(SELECT MAX(position) FROM {balance_history})"))
    report = read_side.queries.audit_replay()
    assert {(m.model, m.key.split(".")[-1]) for m in report.mismatches} == {
        ("balances", "balance"), ("balance_history", "reason")}
    balance = next(m for m in report.mismatches if m.key.endswith(".balance"))
    # Amounts in DEAL as every answer shows them (base units only in *_units fields).
    assert Decimal(balance.actual) - Decimal(balance.expected) == Decimal("0.00000001")


def test_a_replay_names_read_model_rows_removed_or_added_behind_its_back(ledger, read_side):
    history(ledger)
    read_side.projector.catch_up()
    store = read_side.store
    with store._cursor(commit=True) as cursor:
        cursor.execute(store.sql("SELECT MAX(position) FROM {balance_history}"))
        [position] = cursor.fetchone()
        cursor.execute(store.sql("SELECT MIN(transfer_id), MAX(transfer_id) FROM {transactions}"))
        removed, copied = cursor.fetchone()
        cursor.execute(store.sql("DELETE FROM {transactions} WHERE transfer_id = ?"), (removed,))
        cursor.execute(store.sql(
            f"INSERT INTO {{transactions}} ({', '.join(columns(TransactionRow))}) SELECT "
            f"{', '.join('?' if name == 'transfer_id' else name for name in columns(TransactionRow))}"
            " FROM {transactions} WHERE transfer_id = ?"), ("f" * 32, copied))
        cursor.execute(store.sql("DELETE FROM {balance_history} WHERE position = ?"), (position,))
    report = read_side.queries.audit_replay()
    found = {(m.model, m.key, m.expected, m.actual) for m in report.mismatches}
    assert found == {
        ("transactions", removed, "present", "missing"),
        ("transactions", "f" * 32, "absent", "present"),
        ("balance_history", str(position), "present", "missing"),
    }


def test_a_replay_shows_a_changed_time_as_rfc3339_with_z(ledger, read_side):
    _, destination, _ = history(ledger)
    read_side.projector.catch_up()
    store = read_side.store
    with store._cursor(commit=True) as cursor:
        cursor.execute(store.sql(
            "UPDATE {balances} SET opened_at = opened_at + 1 WHERE account_id = ?"
        ), (destination.hex,))
    [found] = read_side.queries.audit_replay().mismatches
    assert found.key.endswith(".opened_at") and found.actual.endswith("Z")
    assert datetime.fromisoformat(found.actual) - datetime.fromisoformat(found.expected) == (
        timedelta(microseconds=1))


def test_a_replay_up_to_a_position_checks_the_history_up_to_it(ledger, read_side):
    _, _, positions = history(ledger)
    read_side.projector.catch_up()
    report = read_side.queries.audit_replay(until_position=positions[9])
    assert report.mismatches == [] and report.supply_ok
    assert report.last_position == report.events_replayed == positions[9]


def test_a_replay_up_to_a_time_stops_before_later_events(ledger, read_side):
    _, _, positions = history(ledger, transfers=5)
    noon = ledger.clock() + timedelta(hours=1)
    ledger.clock.advance(2 * 3600)
    history(ledger, transfers=5)
    read_side.projector.catch_up()
    report = read_side.queries.audit_replay(until=noon)
    assert report.last_position == positions[-1]
    assert report.mismatches == []


def test_balances_at_a_position_and_at_a_time_come_from_the_history(ledger, read_side):
    _, destination, positions = history(ledger, transfers=4)
    before = ledger.clock()
    ledger.clock.advance(60)
    ledger.execute(c.TransferFunds(uuid4(), ledger.open_account(100), destination, 50))
    read_side.projector.catch_up()
    queries = read_side.queries
    assert queries.balance(destination, at_position=positions[1]).balance == 6
    assert queries.balance(destination, at_position=positions[1] - 2).balance == 3
    assert queries.balance(destination, at_time=before).balance == 12
    assert queries.balance(destination, at_time=before + timedelta(seconds=61)).balance == 62


@pytest.mark.parametrize("tamper", ["alter", "delete"])
def test_a_stored_event_changed_behind_the_applications_back_is_reported(
    ledger, read_side, raw_events, tamper
):
    _, _, positions = history(ledger)
    read_side.projector.catch_up()
    target = positions[7] - 1  # the destination's credit of the eighth transfer
    if tamper == "alter":
        forged = raw_events.state_at(target, ledger).replace(b'"amount":3', b'"amount":30')
        raw_events.execute("UPDATE {t} SET state = %s WHERE {id} = %s", (forged, target))
    else:
        raw_events.execute("DELETE FROM {t} WHERE {id} = %s", (target,))
    report = read_side.queries.audit_replay()
    assert report.first_tampered_position == target
    assert ("event_log", f"position {target}") in {(m.model, m.key) for m in report.mismatches}


@pytest.fixture
def pg_ledger(postgres):
    """Only PostgreSQL leaves gaps in the log (rolled-back writes)."""
    ledger = LedgerHarness(postgres.env)
    side = ReadSide(ledger.app, postgres.env, clock=ledger.clock)
    yield ledger, side, postgres
    side.close()
    ledger.close()


def test_an_event_inserted_into_a_gap_of_the_log_is_reported(pg_ledger):
    ledger, read_side, store = pg_ledger
    history(ledger, transfers=3)
    table = f'"{store.settings.postgres_schema}".{ledger.app.recorder.events_table_name}'
    database = store.settings.database_url.rsplit("/", 1)[1]
    with pg_connect(database) as conn:  # a rolled-back write leaves such a gap
        gap = conn.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'notification_id'))").fetchone()[0]
    history(ledger, transfers=3)
    read_side.projector.catch_up()
    with pg_connect(database) as conn:
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state, "
            "notification_id) VALUES (%s, 1, 'domain.pricing:PriceSchedule.Started', "
            "%s, %s)", (uuid4(), b'{"timestamp":{"_type_":"datetime_iso","_data_":'
                                 b'"2026-01-01T00:00:00+00:00"}}', gap))
    report = read_side.queries.audit_replay()
    assert report.first_tampered_position == gap
    assert ("event_log", f"position {gap}", "inserted") in {
        (m.model, m.key, m.actual) for m in report.mismatches}


def test_a_rebuild_keeps_the_evidence_of_tampering(ledger, read_side, raw_events):
    _, _, positions = history(ledger)
    read_side.projector.catch_up()
    target = positions[3]  # the fourth transfer's record: its reason is free text
    forged = raw_events.state_at(target, ledger).replace(b'"reason":"n3"', b'"reason":"n9"')
    raw_events.execute("UPDATE {t} SET state = %s WHERE {id} = %s", (forged, target))
    read_side.projector.rebuild()  # the forged text now fits the rebuilt models...
    report = read_side.queries.audit_replay()
    assert report.first_tampered_position == target  # ...but not the checkpoints
