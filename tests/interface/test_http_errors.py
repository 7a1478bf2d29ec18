"""Every failure answers the one error shape: FastAPI's validation errors,
unknown routes and methods, malformed JSON, wrong types, oversized bodies,
and bugs (500 internal_error, never a traceback)."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from interface.http.app import create_app
from interface.http.auth import parse_api_keys
from tests.interface.conftest import sqlite_settings
from tests.interface.helpers import assert_error, funded_account, new_id, open_account
from tests.support.http import ADMIN, API_KEYS, ThreadServer, bearer


def test_an_unknown_route_is_not_found(api, admin):
    assert_error(admin.get("/v1/nothing-here"), 404, "not_found")


def test_a_wrong_method_is_method_not_allowed_with_allow(api, admin):
    response = admin.delete("/v1/transfers")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


def test_malformed_json_is_bad_request(api, admin):
    response = admin.post("/v1/transfers", content=b'{"transfer_id": ',
                          headers={"content-type": "application/json"})
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("body", [[], "text", 5, {"transfer_id": 5}, {"transfer_id": True}])
def test_values_of_the_wrong_json_type_are_bad_request(api, admin, body):
    assert_error(admin.post("/v1/transfers", json=body), 400, "bad_request")


def test_a_missing_body_is_bad_request(api, admin):
    assert_error(admin.post("/v1/transfers"), 400, "bad_request")


def test_a_boolean_must_be_a_json_boolean(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfers": [{"transfer_id": new_id(), "from": source, "to": destination,
                           "amount": "1"}], "atomic": "yes"}
    assert_error(admin.post("/v1/transfers/batch", json=body), 400, "bad_request")


def test_unknown_fields_are_refused_so_typos_never_pass(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
            "memo": "typo of reason"}
    error = assert_error(admin.post("/v1/transfers", json=body), 422, "invalid_request")
    assert "memo" in error["message"]


def test_missing_fields_and_malformed_ids_are_invalid_request(api, admin):
    assert_error(admin.post("/v1/accounts", json={}), 422, "invalid_request")
    assert_error(admin.post("/v1/accounts", json={"account_id": "not-a-uuid"}), 422,
                 "invalid_request")
    assert_error(admin.post("/v1/accounts/not-a-uuid/freeze"), 422, "invalid_request")


# Body size


@pytest.fixture(scope="module")
def small_bodies(tmp_path_factory):
    server = ThreadServer(sqlite_settings(tmp_path_factory.mktemp("limits") / "var",
                                          body_bytes_max=1024)).start()
    yield server
    server.stop()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(small_bodies):
    with small_bodies.client() as client:
        response = client.post("/v1/accounts", content=b"x" * 1025,
                               headers={"content-type": "application/json"})
    error = assert_error(response, 413, "bad_request")
    assert "1024" in error["message"]


def test_a_streamed_body_over_the_limit_is_refused_while_streaming(small_bodies):
    def chunks():
        for _ in range(64):
            yield b" " * 100

    with small_bodies.client() as client:
        response = client.post("/v1/accounts", content=chunks(),
                               headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "bad_request")


def test_a_body_at_the_limit_is_parsed(small_bodies):
    body = json.dumps({"account_id": new_id(), "kind": "user"}).ljust(1024).encode()
    with small_bodies.client() as client:
        response = client.post("/v1/accounts", content=body,
                               headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text


def test_the_limit_applies_before_authentication(small_bodies):
    response = httpx.post(f"{small_bodies.url}/v1/accounts", content=b"x" * 5000)
    assert_error(response, 413, "bad_request")


# Bugs


def test_a_bug_answers_500_internal_error_without_a_traceback(tmp_path):
    app = create_app(sqlite_settings(tmp_path / "var"), keyring=parse_api_keys(API_KEYS))

    async def broken():
        raise ZeroDivisionError("secret detail")

    app.add_api_route("/boom", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers=bearer(ADMIN))
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["message"] == "internal error; the request was not applied"
