"""A projector stopped at an event it cannot apply (it never skips it) makes
/ready answer 503 naming that position, however small the lag, and the lag
gauge says how far behind that leaves the read models."""

from __future__ import annotations

import re
import sqlite3

import pytest

from application.eventlog.seal_check import UnauthenticatedEvent
from tests.interface.helpers import funded_account
from tests.support.http import ADMIN, ThreadServer


def lag_sample(metrics_text: str) -> float | None:
    found = re.search(r'^projection_lag_events\{projection="[^"]+"\} (\S+)$', metrics_text, re.M)
    return float(found.group(1)) if found else None


def test_a_stalled_projector_is_not_ready_and_its_lag_is_measured(make_settings):
    server = ThreadServer(make_settings("sqlite", projections_enabled=False)).start()
    try:
        with server.client(ADMIN) as client:
            funded_account(client, "2")
            ready = client.get("/ready")
            assert ready.status_code == 200, ready.text  # behind, but within the allowed lag
            position = ready.json()["store_position"]
            service = server.service
            events_file = service.settings.eventsourcing_env()["SQLITE_DBNAME"]
            with sqlite3.connect(events_file) as conn:
                conn.execute(f"UPDATE {service.app.recorder.events_table_name} "  # noqa: S608
                             "SET state = ? WHERE rowid = ?", (b"{broken", position))
            with pytest.raises(UnauthenticatedEvent):  # its commit's seal no longer checks
                service.read_side.projector.catch_up()
            stalled = client.get("/ready")
            assert stalled.status_code == 503, stalled.text
            # the seal covers a whole commit: the stop names the first
            # position of the commit that holds the edited row
            named = re.search(r"position (\d+)", stalled.json()["error"]["message"])
            assert named is not None, stalled.text
            assert position - 3 < int(named.group(1)) <= position  # the funding commit
            lag = lag_sample(client.get("/metrics").text)
            assert lag is not None and lag >= position - int(named.group(1)) + 1
    finally:
        server.stop()
