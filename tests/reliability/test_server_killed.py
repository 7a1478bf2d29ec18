"""The API server SIGKILLed in the middle of a load (no graceful anything),
then started again on the same store: every command it acknowledged is in
the log exactly once, the ones cut off are either wholly there or wholly
absent (a retry with the same id applies each once), and settlement resumes
from the log with nothing sent twice. The SIGTERM case is
tests/interface/test_restart.py; a killed writer without HTTP is
tests/application/test_crash.py."""

from __future__ import annotations

import pytest

from interface.wiring.settings import Settings
from tests.interface.helpers import funded_account
from tests.reliability.conftest import serve_env, service_settings
from tests.reliability.guarantees import assert_guarantees
from tests.reliability.load import Load, retry_unknown
from tests.support.http import ADMIN, ServeProcess

pytestmark = pytest.mark.slow  # fault injection: see pyproject's markers

ACKNOWLEDGED_BEFORE_KILL = 200


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigkill_mid_load_then_restart_loses_and_doubles_nothing(kind, tmp_path, request):
    if kind == "sqlite":
        settings = service_settings(Settings(data_dir=tmp_path / "var"))
    else:
        settings = request.getfixturevalue("pg_service")
    env = serve_env(settings)
    server = ServeProcess(tmp_path, env)
    try:
        with server.client(ADMIN) as admin:
            accounts = [funded_account(admin, "1000") for _ in range(4)]
        load = Load([server.url], accounts, clients=4).start()
        try:
            load.wait_for_acknowledged(ACKNOWLEDGED_BEFORE_KILL)
        finally:
            server.kill()
            book = load.stop()
    finally:
        server.kill()

    restarted = ServeProcess(tmp_path, env)
    try:
        retry_unknown(book, restarted.url)
        with restarted.client(ADMIN) as admin:
            assert_guarantees(settings.eventsourcing_env(), book, accounts, admin)
    finally:
        assert restarted.terminate() == 0
