"""Security properties beyond the scope matrix (test_auth.py): the only
unscoped routes are the documented ones, tokens are compared in constant
time, the admin key file is refused when others could read or swap it, and
a whole server run logs none of its secrets."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi.routing import APIRoute
from solders.keypair import Keypair

from interface.http.app import PUBLIC_PATHS, api_routes, create_app
from interface.http.auth import ApiKeyError, parse_api_keys, read_key_file
from interface.http.server import STARTUP_FAILURE_EXIT
from interface.wiring import api_keys
from tests.chain.test_custody import secret_renderings
from tests.interface.conftest import sqlite_settings
from tests.support.http import API_KEYS, START_TIMEOUT_S, _clean_environ, bearer, wait_until
from tests.support.webhook import WebhookReceiver

DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets"})
"""FastAPI's own pages and their assets, public like /health (API.md: the
OpenAPI is the reference)."""


# --- the route table ---------------------------------------------------------------


def all_routes(app) -> list:
    found, pending = [], list(app.routes)
    while pending:
        route = pending.pop(0)
        if hasattr(route, "original_router"):
            pending.extend(route.original_router.routes)
        else:
            found.append(route)
    return found


def test_the_only_routes_outside_the_scoped_api_are_the_docs(tmp_path):
    app = create_app(sqlite_settings(tmp_path / "var"), keyring=parse_api_keys(API_KEYS))
    others = {route.path for route in all_routes(app) if not isinstance(route, APIRoute)}
    assert others <= DOCS_PATHS, others - DOCS_PATHS
    assert {"/health", "/ready", "/metrics"} == PUBLIC_PATHS
    assert {route.path for route in api_routes(app)} >= PUBLIC_PATHS


# --- constant-time token comparison ------------------------------------------------


def test_tokens_are_compared_by_digest_with_compare_digest_and_no_early_exit():
    source = inspect.getsource(api_keys.Keyring.authenticate)
    assert "hmac.compare_digest(" in source
    assert "==" not in source and "break" not in source and "return key" not in source
    assert "_digest(token)" in source  # equal-length inputs, whatever the token's length


@pytest.mark.parametrize("token", ["admin-token", "rw-token", "not-a-key", "x" * 500])
def test_every_key_is_compared_whichever_token_is_presented(monkeypatch, token):
    keyring = parse_api_keys(API_KEYS)
    compared: list[tuple[int, int]] = []
    real = api_keys.hmac.compare_digest

    def counting(a, b):
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", counting)
    keyring.authenticate(token)
    assert len(compared) == len(keyring) and set(compared) == {(32, 32)}


# --- the admin key file ----------------------------------------------------------


def key_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "api-key"
    path.write_text("a-secret-admin-token\n")
    path.chmod(mode)
    return path


def test_a_0600_key_file_is_read(tmp_path):
    assert read_key_file(key_file(tmp_path)) == "a-secret-admin-token"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610, 0o601])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    with pytest.raises(ApiKeyError, match="accessible by group or others") as error:
        read_key_file(key_file(tmp_path, mode))
    assert "a-secret-admin-token" not in str(error.value)


def test_a_symlinked_key_file_is_refused_even_to_a_0600_file(tmp_path):
    target = key_file(tmp_path)
    link = tmp_path / "linked-api-key"
    link.symlink_to(target)
    with pytest.raises(ApiKeyError, match="symlink"):
        read_key_file(link)


def test_a_key_path_that_is_not_a_file_is_refused(tmp_path):
    directory = tmp_path / "api-key"
    directory.mkdir(mode=0o700)
    with pytest.raises(ApiKeyError):
        read_key_file(directory)


# --- no secret in any log line of a server run -------------------------------------


TOKENS = {"admin": "adm1n-T0ken-s3cret-aaaaaaaaaaaaaaaa", "writer": "wr1ter-T0ken-s3cret-bbbbbbbb"}
WRONG_TOKEN = "wr0ng-T0ken-pr3sented-cccccccccccc"
WEBHOOK_SECRET = "w3bh00k-s3cret-dddddddddddddddd"


def start_verbose_server(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str,
                                                                     Path, Path]:
    """``deals-ledger -v serve`` (INFO logs, uvicorn's access log included)."""
    out, err = workdir / "serve.out", workdir / "serve.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "interface.cli", "-v", "serve", "--port", "0"],
            cwd=workdir, env={**_clean_environ(), **env}, stdout=stdout, stderr=stderr,
        )

    def listening() -> str | None:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{err.read_text()[-3000:]}")
        for line in out.read_text().splitlines():
            if "listening on " in line:
                return line.split("listening on ", 1)[1].split()[0]
        return None

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    url = wait_until(listening, START_TIMEOUT_S, "the serve banner")
    wait_until(healthy, START_TIMEOUT_S, "/health")
    return process, url, out, err


def exercise(url: str) -> None:
    """Calls that log: commands, refusals, unknown tokens, a bug-free 404."""
    admin = httpx.Client(base_url=url, headers=bearer(TOKENS["admin"]), timeout=30)
    with admin:
        account = str(uuid4())
        opened = admin.post("/v1/accounts", json={"account_id": account, "kind": "user"})
        assert opened.status_code == 201, opened.text
        minted = admin.post("/v1/mint", json={"transfer_id": str(uuid4()), "to": account,
                                              "amount": "5"})
        assert minted.status_code == 201, minted.text
        admin.post("/v1/transfers", content=b"{not json", headers={"content-type":
                                                                   "application/json"})
        admin.get("/v1/nowhere")
        admin.post("/v1/reconciliations")
    for token in (WRONG_TOKEN, TOKENS["writer"]):
        httpx.get(f"{url}/v1/system", headers=bearer(token), timeout=30)
        httpx.post(f"{url}/v1/mint", headers=bearer(token), json={}, timeout=30)
    httpx.get(f"{url}/v1/system", headers={"Authorization": f"Basic {TOKENS['admin']}"})


DATABASE_PASSWORD = "db-pa55word-eeeeeeeeeeee"


def store_env(kind: str, request) -> dict[str, str]:
    """SQLite, or PostgreSQL through a URL that carries a password (the
    test server trusts local connections, so any password is accepted)."""
    if kind == "sqlite":
        return {}
    settings = request.getfixturevalue("postgres").settings
    url = settings.database_url.replace("://root@", f"://root:{DATABASE_PASSWORD}@")
    assert DATABASE_PASSWORD in url
    return {"DEALS_DATABASE_URL": url, "DEALS_POSTGRES_SCHEMA": settings.postgres_schema}


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_server_run_logs_no_token_custody_key_or_webhook_secret(tmp_path, request, store):
    keypair = Keypair()
    custody_file = tmp_path / "custody.json"
    custody_file.write_text(json.dumps(list(bytes(keypair))))
    custody_file.chmod(0o600)
    powers = {name: Keypair() for name in ("DEALS_FEE_PAYER_KEYPAIR",
                                           "DEALS_CUSTODY_OWNER_KEYPAIR",
                                           "DEALS_MINT_AUTHORITY_KEYPAIR")}
    for name, power in powers.items():  # a key of its own for each power, as secret
        (tmp_path / name).write_text(json.dumps(list(bytes(power))))
        (tmp_path / name).chmod(0o600)
    api_keys = f"admin:{TOKENS['admin']}:admin,writer:{TOKENS['writer']}:ledger:write"
    with WebhookReceiver() as receiver:
        env = {
            "DEALS_DATA_DIR": str(tmp_path / "var"), "DEALS_API_KEYS": api_keys,
            "DEALS_CUSTODY_KEYPAIR": str(custody_file),
            **{name: str(tmp_path / name) for name in powers},
            "DEALS_ALERT_WEBHOOK_URL": receiver.url, "DEALS_ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DEALS_SUSPICIOUS_LARGE_AMOUNT": "1", **store_env(store, request),
        }
        process, url, out, err = start_verbose_server(tmp_path, env)
        try:
            exercise(url)
            wait_until(receiver.delivered, 20, "an alert at the webhook (large mint)")
        finally:
            process.terminate()
            assert process.wait(60) == 0
        sent = b"\n".join(request.body + json.dumps(request.headers).encode()
                          for request in receiver.delivered()).decode()
    logged = out.read_text() + err.read_text()
    assert "GET /v1/system" in logged and "ALERT suspicious_activity" in logged
    everything = logged + sent
    for secret in [*TOKENS.values(), WRONG_TOKEN, WEBHOOK_SECRET, DATABASE_PASSWORD,
                   *secret_renderings(keypair), custody_file.read_text()[1:40],
                   *(rendering for power in powers.values()
                     for rendering in secret_renderings(power))]:
        assert secret not in everything, f"a secret rendering appears in the logs: {secret[:6]}..."


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_server_refuses_to_start_with_a_webhook_but_no_secret(tmp_path, workers):
    """With several workers too: uvicorn's supervisor stops when a worker
    fails to start, and the serve process must exit non-zero, not 0."""
    env = {"DEALS_DATA_DIR": str(tmp_path / "var"), "DEALS_API_KEYS": API_KEYS,
           "DEALS_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts", "DEALS_SETTLEMENT": "off"}
    result = subprocess.run(
        [sys.executable, "-m", "interface.cli", "serve", "--port", "0", "--workers", workers],
        cwd=tmp_path, env={**_clean_environ(), **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == STARTUP_FAILURE_EXIT
    assert "DEALS_ALERT_WEBHOOK_SECRET" in result.stderr
