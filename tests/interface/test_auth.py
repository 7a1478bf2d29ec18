"""API keys and scopes: the matrix over every route, the key format, and the
admin key ``deals-ledger serve`` generates when none is configured."""

from __future__ import annotations

import stat

import httpx
import pytest
from fastapi.routing import APIRoute

from interface.http.app import PUBLIC_PATHS, api_routes, create_app
from interface.http.auth import ApiKeyError, Scope, parse_api_keys
from interface.http.deps import declared_scope
from tests.interface.conftest import sqlite_settings
from tests.support.http import (
    ADMIN,
    API_KEYS,
    READ_WRITE,
    READER,
    WITHDRAWER,
    WRITER,
    ServeProcess,
)

KEY_SCOPES = {
    ADMIN: {Scope.ADMIN}, WRITER: {Scope.WRITE}, READER: {Scope.READ},
    READ_WRITE: {Scope.READ, Scope.WRITE}, WITHDRAWER: {Scope.WITHDRAW},
}
PLACEHOLDERS = {"service_type": "search", "address": "11111111111111111111111111111111"}


def declared_scopes(route: APIRoute) -> list[Scope]:
    return [scope for dependency in route.dependant.dependencies
            if (scope := declared_scope(dependency.call)) is not None]


def test_every_route_declares_exactly_one_scope_or_is_public(tmp_path):
    app = create_app(sqlite_settings(tmp_path / "var"), keyring=parse_api_keys(API_KEYS))
    undeclared = [
        f"{sorted(route.methods)} {route.path}" for route in api_routes(app)
        if len(declared_scopes(route)) != (0 if route.path in PUBLIC_PATHS else 1)
    ]
    assert not undeclared, f"routes without exactly one declared scope: {undeclared}"
    assert len(api_routes(app)) >= 29


def test_admin_routes_are_the_ones_api_md_names(tmp_path):
    app = create_app(sqlite_settings(tmp_path / "var"), keyring=parse_api_keys(API_KEYS))
    admin_paths = {route.path for route in api_routes(app)
                   if declared_scopes(route) == [Scope.ADMIN]}
    assert admin_paths == {
        "/v1/accounts/{account_id}/freeze", "/v1/accounts/{account_id}/unfreeze",
        "/v1/transfers/{transfer_id}/reverse", "/v1/mint", "/v1/burn",
        "/v1/pricing/{service_type}", "/v1/pricing/{service_type}/rules/{position}/deactivate",
        "/v1/audit/replay", "/v1/audit/events",
        "/v1/audit/digest", "/v1/audit/proof", "/v1/audit/consistency",
        "/v1/reconciliations", "/v1/reconciliations/latest",
        "/v1/reconciliations/findings/{finding_id}/adjust",
        "/v1/reconciliations/deposits", "/v1/reconciliations/findings/{finding_id}/assign",
        "/v1/reconciliations/findings/{finding_id}/return",
        "/v1/webhooks", "/v1/webhooks/{webhook_id}", "/v1/webhooks/{webhook_id}/deliveries",
        "/v1/webhooks/{webhook_id}/replay",
    }


def _path(route: APIRoute) -> str:
    path = route.path
    for name in route.param_convertors:
        value = PLACEHOLDERS.get(name, "00000000-0000-4000-8000-000000000000")
        path = path.replace("{" + name + "}", value)
    return path


def test_the_scope_matrix_over_every_route(api):
    checked = 0
    for route in api_routes(api.app):
        scopes = declared_scopes(route)
        if not scopes:
            continue
        method, path = sorted(route.methods)[0], _path(route)
        for token, held in [(None, set()), ("not-a-key", set()), *KEY_SCOPES.items()]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            if token not in KEY_SCOPES:
                expected = 401
            elif Scope.ADMIN in held or scopes[0] in held:
                expected = None
            else:
                expected = 403
            # streamed: an admitted event stream answers 200 and goes on; its status is enough
            with httpx.stream(method, api.url + path, headers=headers, json={}) as response:
                if expected is None:
                    assert response.status_code not in (401, 403), (method, path, token)
                else:
                    response.read()
                    assert response.status_code == expected, (method, path, token, response.text)
                    code = {401: "unauthorized", 403: "forbidden"}[expected]
                    assert response.json()["error"]["code"] == code
            checked += 1
    assert checked >= 26 * 6


def test_a_token_in_another_scheme_is_unauthorized(api):
    response = httpx.get(f"{api.url}/v1/system", headers={"Authorization": f"Basic {ADMIN}"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_probes_need_no_key(api):
    assert httpx.get(f"{api.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{api.url}/metrics").status_code == 200


# The key format


def test_keys_parse_with_scopes_that_contain_colons():
    keyring = parse_api_keys("ops:t0k3n:ledger:read|ledger:write, root:s3cret:admin")
    reader = keyring.authenticate("t0k3n")
    assert reader is not None and reader.name == "ops"
    assert reader.allows(Scope.READ) and reader.allows(Scope.WRITE)
    assert not reader.allows(Scope.ADMIN)
    root = keyring.authenticate("s3cret")
    assert root is not None and all(root.allows(scope) for scope in Scope)
    assert keyring.authenticate("s3cre") is None and keyring.authenticate("") is None


def test_withdrawing_is_a_scope_of_its_own_that_admin_implies():
    """A write key may connect any wallet to any account: were it also to
    withdraw, one key could send any account's tokens to itself."""
    keyring = parse_api_keys("w:t1:ledger:read|ledger:write,p:t2:ledger:withdraw,a:t3:admin")
    writer, payer, admin = (keyring.authenticate(token) for token in ("t1", "t2", "t3"))
    assert writer is not None and not writer.allows(Scope.WITHDRAW)
    assert payer is not None and payer.allows(Scope.WITHDRAW) and not payer.allows(Scope.WRITE)
    assert admin is not None and admin.allows(Scope.WITHDRAW)


@pytest.mark.parametrize("text", [
    "", "name-only", "a:token", "a:tok en:admin", "a:token:root", "a:t:admin,a:u:admin",
])
def test_malformed_key_lists_are_refused_without_echoing_tokens(text):
    with pytest.raises(ApiKeyError) as refused:
        parse_api_keys(text)
    assert "token" not in str(refused.value).replace("token of", "").replace("name:token", "") \
        or "tok en" not in str(refused.value)


def test_a_keyring_never_shows_its_tokens():
    keyring = parse_api_keys("ops:very-secret-token:admin")
    assert "very-secret-token" not in repr(keyring)
    assert "very-secret-token" not in repr(keyring.authenticate("very-secret-token"))


# The generated key


def test_serve_generates_an_admin_key_once_stores_it_0600_and_never_logs_it(tmp_path):
    first = ServeProcess(tmp_path, {})
    try:
        key_file = tmp_path / "var" / "api-key"
        token = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert token in first.banner and f'Bearer {token}"' in first.banner
        with first.client(token) as client:
            assert client.get("/v1/system").status_code == 200
            assert client.post("/v1/mint", json={}).status_code == 422  # admin: past auth
    finally:
        assert first.terminate() == 0
    second = ServeProcess(tmp_path, {})
    try:
        assert token not in second.banner
        assert "$(cat var/api-key)" in second.banner
        with second.client(token) as client:
            assert client.get("/v1/system").status_code == 200
    finally:
        assert second.terminate() == 0
    for process in (first, second):
        assert token not in process.stderr_path.read_text()
    assert key_file.read_text().strip() == token


def test_serve_refuses_a_key_file_others_can_read(tmp_path):
    (tmp_path / "var").mkdir()
    key_file = tmp_path / "var" / "api-key"
    key_file.write_text("leaked\n")
    key_file.chmod(0o644)
    with pytest.raises(RuntimeError, match="accessible by group or others"):
        ServeProcess(tmp_path, {})
