"""X-Forwarded-For is believed only from DEALS_TRUSTED_PROXIES (none by
default): a local process sending it (uvicorn believes any loopback client
by default) hid the token-guessing alert's real subject and put forged
addresses in the access log. Real ``deals-ledger serve`` processes."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from interface.http.forwarded import ForwardedHeadersMiddleware
from tests.interface.cli_support import REPO
from tests.support.http import ServeProcess, wait_until

FORGED = "203.0.113.77"
GUESSES = 5


def guessing_server(tmp_path, **env: str) -> ServeProcess:
    return ServeProcess(tmp_path, {"DEALS_DATA_DIR": str(tmp_path / "var"),
                                   "DEALS_API_KEYS": "admin:right-token:admin",
                                   "DEALS_SETTLEMENT": "off",
                                   "DEALS_SUSPICIOUS_AUTH_FAILURES": "3", **env})


def guess_tokens(server: ServeProcess, forwarded: str = FORGED) -> str:
    """Guess tokens behind a forged X-Forwarded-For; the server's log once it
    has flagged the guesser."""
    for guess in range(GUESSES):
        answer = httpx.get(f"{server.url}/v1/system", timeout=30, headers={
            "Authorization": f"Bearer guess-{guess}", "X-Forwarded-For": forwarded})
        assert answer.status_code == 401
    return wait_until(lambda: _flagged(server), 30, "the token-guessing alert")


def _flagged(server: ServeProcess) -> str | None:
    log = server.stderr_path.read_text()
    return log if "rule=auth_failures" in log else None


def test_forwarded_headers_from_an_untrusted_client_are_ignored(tmp_path):
    server = guessing_server(tmp_path)
    try:
        log = guess_tokens(server)
    finally:
        server.terminate()
    assert "subject=127.0.0.1" in log
    assert "127.0.0.1" in server.banner and "GET /v1/system" in server.banner
    assert FORGED not in log + server.banner  # neither the alert nor the access log (stdout)


def test_forwarded_headers_from_a_configured_proxy_name_the_client(tmp_path):
    server = guessing_server(tmp_path, DEALS_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")
    try:
        log = guess_tokens(server)
    finally:
        server.terminate()
    assert f"subject={FORGED}" in log
    assert f"{FORGED}:0 - \"GET /v1/system" in server.banner  # and the access log (stdout)


@pytest.mark.parametrize("proxies", ["localhost", "10.0.0.0/33", "127.0.0.1;10.0.0.1"])
def test_a_trusted_proxy_that_is_not_an_address_stops_the_start(tmp_path, proxies):
    result = subprocess.run(
        [sys.executable, "-m", "interface.cli", "serve", "--port", "0"], cwd=tmp_path,
        env={"DEALS_DATA_DIR": str(tmp_path / "var"), "DEALS_TRUSTED_PROXIES": proxies,
             "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 78  # exit_codes.CONFIG: a refused setting
    assert "DEALS_TRUSTED_PROXIES" in result.stderr


def test_a_forwarded_entry_that_is_not_an_address_is_never_the_client(tmp_path):
    server = guessing_server(tmp_path, DEALS_TRUSTED_PROXIES="127.0.0.1")
    try:
        log = guess_tokens(server, forwarded="garbage<script>")
    finally:
        server.terminate()
    assert "subject=127.0.0.1" in log
    assert "127.0.0.1" in server.banner and "GET /v1/system" in server.banner
    assert "garbage" not in log + server.banner


@pytest.mark.parametrize(("forwarded", "client"), [
    ("garbage<script>", None),
    ("203.0.113.7, garbage", "203.0.113.7"),
    ("203.0.113.7, 10.1.2.3", "203.0.113.7"),  # the trusted hop is skipped
    ("not-an-ip, 10.1.2.3", "10.1.2.3"),  # only trusted hops left: the first valid one
    ("2001:db8::1", "2001:db8::1"),
    ("", None),
])
def test_the_client_is_the_last_valid_untrusted_entry(forwarded, client):
    middleware = ForwardedHeadersMiddleware(app=None, trusted=("10.0.0.0/8", "127.0.0.1"))
    assert middleware.client_of(forwarded) == client


def test_everyone_trusted_still_ignores_entries_that_are_not_addresses():
    middleware = ForwardedHeadersMiddleware(app=None, trusted=("*",))
    assert middleware.client_of("garbage, 198.51.100.4") == "198.51.100.4"
    assert middleware.client_of("garbage") is None
