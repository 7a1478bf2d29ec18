"""PostgreSQL refusing the service: commands answer 503 and one
store_unreachable alert is raised for the outage, however many places
(the store probe, the writer, requests, the health watch) notice it."""

from __future__ import annotations

from application.alerts import Alert, AlertKind
from tests.interface.helpers import assert_error, funded_account, open_account, transfer_body
from tests.interface.test_store_down import breakable  # noqa: F401 - a fixture
from tests.support.alerts import CollectedAlerts
from tests.support.http import wait_until


def test_commands_refused_by_a_dead_store_alert_once(breakable, raised):  # noqa: F811
    server, role = breakable
    with server.client() as admin:
        source, destination = funded_account(admin, "10"), open_account(admin)
        role.break_()
        try:
            down = wait_until(lambda: store_alerts(raised), 30, "the store_unreachable alert")
            for _ in range(3):
                assert_error(admin.post("/v1/transfers", json=transfer_body(source, destination)),
                             503, "unavailable")
            server.service.alerting.health_watch.check()
        finally:
            role.repair()
    assert store_alerts(raised) == down and len(down) == 1
    assert down[0].fields["error"] and down[0].fields["seen_by"]


def store_alerts(raised: CollectedAlerts) -> list[Alert]:
    return [a for a in raised.alerts if a.kind is AlertKind.STORE_UNREACHABLE]
