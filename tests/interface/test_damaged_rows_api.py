"""Over HTTP, a stored row that cannot be decoded is listed with its
``decode_error`` and reported by the audit replay at its commit (whose
seal it breaks): 200, never a 500."""

from __future__ import annotations

import sqlite3

from tests.interface.helpers import funded_account
from tests.support.http import ADMIN, ThreadServer, wait_until


def test_the_api_lists_a_damaged_row_and_the_replay_reports_it(make_settings):
    server = ThreadServer(make_settings("sqlite")).start()
    try:
        with server.client(ADMIN) as client:
            funded_account(client, "2")
            position = client.get("/ready").json()["store_position"]  # the mint's last event
            # damaged only once projected: the projector rightly refuses an
            # event no seal covers, and its pages are paced while writes come
            wait_until(lambda: client.get("/ready").json()["read_model_position"] >= position,
                       60, "the read models to reach the mint")
            app = server.service.app
            events_file = server.service.settings.eventsourcing_env()["SQLITE_DBNAME"]
            with sqlite3.connect(events_file) as conn:
                conn.execute(f"UPDATE {app.recorder.events_table_name} SET state = ? "  # noqa: S608
                             "WHERE rowid = ?", (b"{broken", position))
            events = client.get("/v1/audit/events", params={"after_position": position - 1})
            assert events.status_code == 200, events.text
            item = next(i for i in events.json()["items"] if i["position"] == position)
            assert item["decode_error"] and item["timestamp"] is None and item["state"] == {}
            replay = client.post("/v1/audit/replay", json={})
            assert replay.status_code == 200, replay.text
            found = {(m["model"], m["key"]) for m in replay.json()["mismatches"]}
            # its commit's seal no longer checks (seals are on by default): the
            # audit stops at the commit's first event, which it names
            (commit_seal,) = app.event_log.seals_from(position, 1)
            assert commit_seal.first <= position <= commit_seal.last
            assert found == {("event_log", f"position {commit_seal.first}")}
    finally:
        server.stop()
