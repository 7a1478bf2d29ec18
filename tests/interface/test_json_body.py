"""A body is JSON, declared and strict: a body without ``Content-Type:
application/json`` is 415 naming what was sent, and a key repeated in any
object (a batch item's included), NaN, or bytes that are not UTF-8 are 400
``bad_request`` naming the fault. None of them writes anything."""

from __future__ import annotations

import json

import pytest

from interface.http.app import api_routes, create_app
from interface.http.auth import parse_api_keys
from interface.http.json_body import JsonRoute, parse_json
from interface.wiring.settings import Settings
from tests.interface.helpers import (
    assert_error,
    funded_account,
    log_position,
    open_account,
    transfer_body,
)
from tests.support.http import API_KEYS


@pytest.mark.parametrize(("content_type", "named"), [
    (None, "no Content-Type"),
    ("text/plain", "'text/plain'"),
    ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
    ("application/json; charset=utf-16", "'application/json; charset=utf-16'"),
    ("application/merge-patch+json", "'application/merge-patch+json'"),
    ("multipart/form-data; boundary=x", "'multipart/form-data; boundary=x'"),
])
def test_a_body_not_sent_as_json_is_unsupported_media_type(api, admin, content_type, named):
    body = transfer_body(funded_account(admin), open_account(admin))
    headers = {"content-type": content_type} if content_type else {}
    before = log_position(api)
    request = admin.build_request("POST", "/v1/transfers", content=json.dumps(body),
                                  headers=headers)
    if content_type is None:
        request.headers.pop("content-type", None)
    error = assert_error(admin.send(request), 415, "unsupported_media_type")
    assert named in error["message"] and "application/json" in error["message"]
    assert log_position(api) == before


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON",
                                          "application/json; charset=UTF-8",
                                          "application/json;charset=utf-8"])
def test_json_with_or_without_a_utf8_charset_is_taken(admin, content_type):
    body = transfer_body(funded_account(admin), open_account(admin))
    answer = admin.post("/v1/transfers", content=json.dumps(body),
                        headers={"content-type": content_type})
    assert answer.status_code == 201, answer.text


def test_an_empty_body_needs_no_content_type(admin):
    answer = admin.post("/v1/audit/replay", content=b"", headers={"content-type": "text/plain"})
    assert answer.status_code == 200, answer.text


def _with_a_repeated_key(document: dict, key: str, value: str) -> str:
    """The document's JSON text with ``key`` written a second time, last."""
    text = json.dumps(document)
    return text[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}"


@pytest.mark.parametrize("key", ["amount", "to", "transfer_id"])
def test_a_key_repeated_in_the_body_is_bad_request_naming_it(api, admin, key):
    source, destination = funded_account(admin), open_account(admin)
    body = transfer_body(source, destination, "1")
    text = _with_a_repeated_key(body, key, {"amount": "2", "to": source,
                                            "transfer_id": body["transfer_id"]}[key])
    before = log_position(api)
    answer = admin.post("/v1/transfers", content=text,
                        headers={"content-type": "application/json"})
    error = assert_error(answer, 400, "bad_request")
    assert repr(key) in error["message"]
    assert log_position(api) == before


def test_a_key_repeated_in_a_batch_item_is_refused_for_the_whole_batch(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    items = [json.dumps(transfer_body(source, destination)) for _ in range(3)]
    items[1] = _with_a_repeated_key(json.loads(items[1]), "amount", "50")
    text = '{"atomic": false, "transfers": [' + ", ".join(items) + "]}"
    before = log_position(api)
    answer = admin.post("/v1/transfers/batch", content=text,
                        headers={"content-type": "application/json"})
    assert "'amount'" in assert_error(answer, 400, "bad_request")["message"]
    assert log_position(api) == before


def test_a_key_repeated_under_an_escaped_spelling_is_the_same_key(admin):
    body = transfer_body(funded_account(admin), open_account(admin))
    text = json.dumps(body)[:-1] + ', "\\u0061mount": "2"}'
    answer = admin.post("/v1/transfers", content=text,
                        headers={"content-type": "application/json"})
    assert "'amount'" in assert_error(answer, 400, "bad_request")["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_bad_request(admin, constant):
    answer = admin.post("/v1/holds", content='{"hold_id": "x", "expires_in_s": ' + constant + "}",
                        headers={"content-type": "application/json"})
    assert constant.lstrip("-") in assert_error(answer, 400, "bad_request")["message"]


@pytest.mark.parametrize(("document", "value"), [
    ('{"a": {"b": 1, "c": 2}, "d": [{"e": 3}]}', {"a": {"b": 1, "c": 2}, "d": [{"e": 3}]}),
    ('{"a": {"a": {"a": 1}}}', {"a": {"a": {"a": 1}}}),  # one key per object
    ('[{"k": 1}, {"k": 2}]', [{"k": 1}, {"k": 2}]),
])
def test_distinct_keys_parse_as_json(document, value):
    assert parse_json(document.encode()) == value


def test_every_route_reads_its_body_the_one_way():
    app = create_app(Settings(), keyring=parse_api_keys(API_KEYS))
    assert all(isinstance(route, JsonRoute) for route in api_routes(app))
