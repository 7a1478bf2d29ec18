"""Stop the server with SIGTERM in the middle of a load and start it again on
the same data: every command it acknowledged is in the log exactly once,
and retrying the ones whose answer was lost applies none of them twice."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from uuid import UUID

import httpx
import pytest

from application.write.event_store import LedgerApplication
from interface.wiring.settings import Settings
from tests.interface.helpers import funded_account, open_account, transfer_body
from tests.support.http import ADMIN, API_KEYS, ServeProcess, bearer, wait_until
from tests.support.log import debits_by_transfer

SENDERS = 6
ACKNOWLEDGED_BEFORE_STOP = 150
REQUESTS_PER_SENDER_MAX = 5000


@dataclass
class Sender:
    """Sends transfers one after another until the server goes away."""

    url: str
    source: str
    destination: str
    acknowledged: dict[str, dict] = field(default_factory=dict)
    unanswered: dict[str, dict] = field(default_factory=dict)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=bearer(ADMIN), timeout=30) as client:
            for _ in range(REQUESTS_PER_SENDER_MAX):
                body = transfer_body(self.source, self.destination, "0.00000001")
                try:
                    response = client.post("/v1/transfers", json=body)
                except httpx.HTTPError:
                    self.unanswered[body["transfer_id"]] = body
                    return
                if response.status_code == 201:
                    self.acknowledged[body["transfer_id"]] = body
                else:  # 503 while shutting down: not applied, may be retried
                    assert response.status_code == 503, response.text
                    self.unanswered[body["transfer_id"]] = body
                    return


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigterm_mid_load_then_restart_loses_and_doubles_nothing(kind, tmp_path, request):
    env = {"DEALS_API_KEYS": API_KEYS, "DEALS_RATE_LIMIT_PER_S": "0"}
    settings = Settings(data_dir=tmp_path / "var")
    if kind == "postgres":
        settings = request.getfixturevalue("postgres").settings
        env |= {"DEALS_DATABASE_URL": settings.database_url,
                "DEALS_POSTGRES_SCHEMA": settings.postgres_schema}

    server = ServeProcess(tmp_path, env)
    with server.client(ADMIN) as admin:
        destination = open_account(admin)
        senders = [Sender(server.url, funded_account(admin, "1"), destination)
                   for _ in range(SENDERS)]
    threads = [threading.Thread(target=sender.run) for sender in senders]
    for thread in threads:
        thread.start()
    wait_until(lambda: sum(len(s.acknowledged) for s in senders) >= ACKNOWLEDGED_BEFORE_STOP,
               60, "load to be acknowledged")
    assert server.terminate() == 0
    for thread in threads:
        thread.join(60)
    assert "Application shutdown complete" in server.stderr_path.read_text()

    restarted = ServeProcess(tmp_path, env)
    try:
        with restarted.client(ADMIN) as admin:
            for sender in senders:
                for body in sender.unanswered.values():
                    assert admin.post("/v1/transfers", json=body).status_code in (200, 201)
                for body in list(sender.acknowledged.values())[:5]:
                    assert admin.post("/v1/transfers", json=body).status_code == 200
    finally:
        assert restarted.terminate() == 0

    acknowledged = {tid for s in senders for tid in s.acknowledged}
    retried = {tid for s in senders for tid in s.unanswered}
    app = LedgerApplication(settings.eventsourcing_env())
    try:
        debits = debits_by_transfer(app)
        assert all(debits[UUID(tid)] == 1 for tid in acknowledged | retried)
        assert max(debits.values()) == 1
        moved = sum(debits[UUID(tid)] for tid in acknowledged | retried)
        assert app.account(UUID(destination)).balance == moved
    finally:
        app.close()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_STOP
