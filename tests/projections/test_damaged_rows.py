"""A stored row that cannot be decoded (bad JSON, a missing key, a field of
the wrong type) is a finding at its position: the audit reports it and goes
on, the raw-events listing shows it, ``deals-ledger replay`` names it and
exits 2, and the projector stops there with an alert, never skipping it."""

from __future__ import annotations

import json
import re
from uuid import uuid4

import pytest

from application import commands as c
from application.alerts import AlertKind
from application.errors import StoreDamaged
from interface.wiring.alerting import alert_refused_page
from projections.ledger_fold import InvariantViolation
from projections.runtime import ReadSide
from tests.interface.cli_support import cli
from tests.support.ledgers import LedgerHarness
from tests.support.raw_events import RawEvents

DAMAGE = {
    "bad_json": lambda state: b"{not json" + state[:10],
    "missing_key": lambda state: state.replace(b'"amount":', b'"amounts":'),
    "wrong_type": lambda state: state.replace(b'"amount":7', b'"amount":"seven"'),
    "wrong_type_that_parses": lambda state: re.sub(rb'"kind":"[^"]*"', b'"kind":5', state),
}


def credit_of_a_transfer(ledger) -> int:
    source, destination = ledger.open_account(100), ledger.open_account()
    moved = ledger.execute(c.TransferFunds(uuid4(), source, destination, 7))
    for position in range(moved.position, 0, -1):
        state = ledger.app.recorder.select_notifications(position, 1)[0]
        if state.topic.endswith("Account.Credited") and b'"amount":7' in state.state:
            return position
    raise AssertionError("no credit found")


def damage(ledger, store, position: int, how: str) -> None:
    raw = RawEvents(ledger, store)
    if how == "unknown_topic":  # written by a newer version, or tampered with
        raw.execute("UPDATE {t} SET topic = %s WHERE {id} = %s",
                    ("domain.account:Account.Teleported", position))
        return
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s",
                (DAMAGE[how](raw.state_at(position, ledger)), position))


@pytest.mark.parametrize("how", [*sorted(DAMAGE), "unknown_topic"])
def test_the_audit_reports_a_damaged_row_at_its_position_and_goes_on(ledger, store, read_side,
                                                                     how):
    position = credit_of_a_transfer(ledger)
    ledger.open_account(5)  # events after it, which the audit still replays
    read_side.projector.catch_up()
    damage(ledger, store, position, how)
    report = read_side.queries.audit_replay()
    assert report.last_position == ledger.app.event_log.head()  # it went on to the end
    keys = {(m.model, m.key) for m in report.mismatches}
    assert ("invariants", f"position {position}") in keys
    listed = read_side.queries.audit_events(after_position=position - 1, limit=1).items
    damaged = next(event for event in listed if event.position == position)
    assert damaged.topic == "domain.account:Account.Teleported" or how != "unknown_topic"
    if how == "bad_json":  # the listing shows what is stored; only bad JSON cannot be
        assert damaged.decode_error is not None and damaged.state == {}
    else:
        assert damaged.decode_error is None
    result = cli(store, "replay", "--json")
    assert result.returncode == 4, result.stderr  # exit_codes.FINDINGS
    found = json.loads(result.stdout)["mismatches"]
    assert {"model": "invariants", "key": f"position {position}"}.items() <= next(
        m for m in found if m["model"] == "invariants").items()


def test_the_projector_stops_at_a_damaged_row_with_an_alert_naming_it(ledger, store, raised):
    position = credit_of_a_transfer(ledger)
    damage(ledger, store, position, "bad_json")
    side = ReadSide(ledger.app, store.env, clock=ledger.clock, page_events=1)
    side.projector.on_refused = alert_refused_page
    try:
        with pytest.raises(InvariantViolation):
            side.projector.catch_up()
        with pytest.raises(InvariantViolation):  # again: it never skips the row
            side.projector.catch_up()
        assert side.queries.position() < position
        alerts = raised.of(AlertKind.PROJECTION_STALLED)
        assert alerts and alerts[0].fields["position"] == position
    finally:
        side.close()


def test_a_command_on_an_aggregate_with_a_damaged_row_is_refused_store_damaged(ledger, store,
                                                                               raised):
    source, destination = ledger.open_account(100), ledger.open_account()
    raw = RawEvents(ledger, store)
    opened = next(position for position in range(ledger.app.event_log.head(), 0, -1)
                  if (row := ledger.app.recorder.select_notifications(position, 1)[0])
                  .topic.endswith("Account.Opened") and row.originator_id == source)
    raw.execute("UPDATE {t} SET state = %s WHERE {id} = %s",  # "kind" removed
                (re.sub(rb'"kind":"[^"]*",?', b"", raw.state_at(opened, ledger)), opened))
    fresh = LedgerHarness(store.env, genesis=False)  # nothing of it cached
    try:
        with pytest.raises(StoreDamaged,
                           match=f"position {opened} \\(version 1\\) of aggregate {source}.*audit"):
            fresh.execute(c.TransferFunds(uuid4(), source, destination, 1))
        [alert] = raised.of(AlertKind.STORE_DAMAGED)
        assert alert.fields["position"] == opened and f"position {opened}" in alert.summary
        assert alert.fields["aggregate_id"] == str(source) and alert.fields["version"] == 1
    finally:
        fresh.close()
