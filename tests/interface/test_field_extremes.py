"""Every numeric, time, id, cursor, amount and address field of every route,
at and past its extremes, over real HTTP on both stores: no value gets a
5xx (but 503), every refusal is in the one error shape and leaves no trace
in the event log.

The fields are read from the app's own OpenAPI document (path and query
parameters, body properties, the items of a batch), so a route or field
added later is fuzzed without a word here. Each request is valid but for
the one field under test. Two passes: a table of extremes per kind of field
(deterministic), and hypothesis values per field, bounded by
DEALS_FUZZ_EXAMPLES (default 4) so CI stays fast; the schemathesis runs
(test_openapi*.py) fuzz the documents' shapes beside this.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair

from interface.http.app import create_app
from interface.http.auth import parse_api_keys
from interface.wiring.settings import Settings
from tests.interface.helpers import log_position
from tests.support.http import API_KEYS
from tests.support.time_texts import ACCEPTED, REFUSED

EXAMPLES = int(os.environ.get("DEALS_FUZZ_EXAMPLES", "4"))


# --- the fields, from the OpenAPI document -------------------------------------------


@dataclass(frozen=True)
class Field:
    method: str
    path: str
    location: str  # "path", "query" or "body"
    name: str  # a body field's path: "amount", "transfers.0.amount"
    kind: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.location}:{self.name}"


def _document() -> dict[str, Any]:
    app = create_app(Settings(), keyring=parse_api_keys(API_KEYS))
    return app.openapi()


DOCUMENT = _document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    options = [_resolve(s) for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


def kind_of(name: str, schema: dict[str, Any]) -> str | None:
    schema = _resolve(schema)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "at":
        return "at"
    if leaf == "cursor":
        return "cursor"
    if leaf == "address":
        return "address"
    if schema.get("format") == "uuid" or leaf == "aggregate_id":
        return "uuid"
    if schema.get("format") == "date-time":
        return "time"
    if schema.get("type") == "integer":
        return "integer"
    if schema.get("type") == "string" and "[0-9]" in schema.get("pattern", ""):
        return "amount"
    return None


def _body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    return _resolve(body["content"]["application/json"]["schema"])


def _body_fields(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict]]:
    for name, property_schema in schema.get("properties", {}).items():
        resolved = _resolve(property_schema)
        if resolved.get("type") == "array" and "properties" in _resolve(resolved["items"]):
            yield from _body_fields(_resolve(resolved["items"]), f"{prefix}{name}.0.")
        else:
            yield f"{prefix}{name}", property_schema


STREAMS = {"/v1/events/stream"}
"""An admitted request to these never ends (Server-Sent Events); their refusals
are tested in tests/interface/test_events_api.py."""


def all_fields() -> list[Field]:
    found = []
    for path, operations in DOCUMENT["paths"].items():
        if path in STREAMS:
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                kind = kind_of(parameter["name"], parameter["schema"])
                if kind is not None:
                    found.append(Field(method.upper(), path, parameter["in"], parameter["name"],
                                       kind))
            schema = _body_schema(operation)
            for name, property_schema in _body_fields(schema or {}):
                kind = kind_of(name, property_schema)
                if kind is not None:
                    found.append(Field(method.upper(), path, "body", name, kind))
    return found


FIELDS = all_fields()


# --- valid requests but for one field --------------------------------------------------


def _valid(name: str, schema: dict[str, Any]) -> Any:
    schema = _resolve(schema)
    leaf = name.rsplit(".", 1)[-1]
    kind = kind_of(name, schema)
    if kind == "uuid":
        return str(uuid4())
    if kind == "address":
        return str(Keypair().pubkey())
    if kind in ("amount",):
        return "1"
    if kind == "time":
        return "2026-01-01T00:00:00Z"
    if kind == "integer":
        return max(1, schema.get("minimum", 1)) if leaf != "expires_in_s" else 60
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "boolean":
        return False
    if schema.get("type") == "array":
        return [_valid_object(_resolve(schema["items"]))]
    if schema.get("type") == "object":
        return _valid_object(schema)
    return "fuzz"


def _valid_object(schema: dict[str, Any]) -> dict[str, Any]:
    return {name: _valid(name, schema["properties"][name])
            for name in schema.get("required", [])}


def _path_value(name: str) -> str:
    if name == "service_type":
        return "search"
    if name == "address":
        return str(Keypair().pubkey())
    return str(uuid4())


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[leaf] = value


def request_with(field: Field, value: Any) -> httpx.Request:
    operation = DOCUMENT["paths"][field.path][field.method.lower()]
    path_values = {p["name"]: _path_value(p["name"])
                   for p in operation.get("parameters", []) if p["in"] == "path"}
    query: dict[str, str] = {}
    if field.location == "path":
        path_values[field.name] = value if isinstance(value, str) else json.dumps(value)
    elif field.location == "query":
        query[field.name] = value if isinstance(value, str) else json.dumps(value)
    url = field.path
    for name, text in path_values.items():
        url = url.replace("{" + name + "}", quote(text, safe="") or "%20")
    schema = _body_schema(operation)
    content = None
    if schema is not None:
        body = _valid_object(schema)  # a nested field's array is required (a batch)
        if field.location == "body":
            _set(body, field.name, value)
        content = json.dumps(body, allow_nan=True).encode()
    return httpx.Request(field.method, url, params=query, content=content,
                         headers={"content-type": "application/json"} if content else {})


# --- the extremes --------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


INTEGERS: list[Any] = [
    0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64,
    10**30, -(10**30), 10**4000, 1.5, 1e308, float("inf"), float("nan"), "1", "1e3", "0x10",
    "", " 1", "\u0661", True, None, [], {},
]
UUIDS: list[Any] = [
    "", "0", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    uuid4().hex, str(uuid4()).upper(), "{" + str(uuid4()) + "}", "urn:uuid:" + str(uuid4()),
    str(uuid4()) + "0", str(uuid4())[:-1], "g" * 36, "../../etc/passwd", "\u0661" * 36,
    "x" * 10_000, 1, None, [], {},
]
TIMES: list[Any] = [*ACCEPTED, *REFUSED, "", 1700000000, -1, None, [], "x" * 10_000]
CURSORS: list[Any] = [
    "", "A", "A" * 200, "A" * 201, "%00", "\U0001f600", _b64("p1:5"), _b64("c2:history::1"),
    _b64(f"c2:history:{uuid4().hex}:1"), _b64(f"c3:history:{uuid4().hex}::1"),
    _b64(f"c3:history:{uuid4().hex}:{'0' * 12}:9223372036854775807"),
    _b64(f"c3:history:{uuid4().hex}:{'0' * 12}:9223372036854775808"),
    _b64(f"c3:transactions:{uuid4().hex}:{'0' * 12}:-1"),
    _b64("c3:history:" + "a" * 150 + ":" + "0" * 12 + ":1"),
]
AMOUNTS: list[Any] = [
    "0", "-0", "0.00000001", "0.000000001", "1000000000", "1000000000.00000001",
    "10000000000", "9" * 32, "9" * 33, "1e400", "NaN", "Infinity", "", " 1", "+1", "0x1",
    "\u0661", 1, 1e300, 10**30, float("nan"), None, [], {},
]
ADDRESSES: list[Any] = [
    "", "1", "1" * 44, "1" * 45, "1" * 10_000, "0OIl" * 11, "\u202e" + str(Keypair().pubkey()),
    str(Keypair().pubkey()) + "\u200b", "11111111111111111111111111111111", 1, None,
]
EXTREMES: dict[str, list[Any]] = {
    "integer": INTEGERS, "uuid": UUIDS, "time": TIMES, "cursor": CURSORS, "amount": AMOUNTS,
    "address": ADDRESSES,
    "at": [str(v) for v in INTEGERS if isinstance(v, int)] + TIMES,
}

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "integer": st.one_of(st.integers(), st.integers(min_value=2**62, max_value=2**70),
                         st.integers(max_value=-(2**62)), st.floats(), _TEXT),
    "uuid": st.one_of(st.uuids().map(str), _TEXT,
                      st.from_regex(r"[0-9a-fA-F{}-]{30,40}", fullmatch=True)),
    "time": st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
                      st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]{5,20}[Zz+-]?"
                                    r"[0-9:]{0,6}", fullmatch=True), _TEXT),
    "cursor": st.one_of(_TEXT, st.binary(max_size=150).map(
        lambda b: base64.urlsafe_b64encode(b).decode())),
    "amount": st.one_of(st.decimals().map(str), st.integers().map(str), st.floats(),
                        st.from_regex(r"[-+]?[0-9]{0,40}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,5})?",
                                      fullmatch=True)),
    "address": _TEXT,
    "at": st.one_of(st.integers().map(str), _TEXT),
}


# --- the checks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(api) -> Iterator[httpx.Client]:
    """Module-scoped (conftest's is per test): hypothesis runs many examples
    in one test, and a function-scoped fixture would not be reset between them."""
    with api.client() as client:
        yield client


def send_and_check(api, admin: httpx.Client, field: Field, value: Any) -> None:
    request = request_with(field, value)
    request.headers.update(admin.headers)
    before = log_position(api)
    response = admin.send(admin.build_request(request.method, str(request.url),
                                              content=request.content,
                                              headers=request.headers))
    context = f"{field.id} = {value!r:.80}: {response.status_code} {response.text[:300]}"
    assert response.status_code < 500 or response.status_code == 503, context
    if response.status_code >= 400:
        error = response.json()
        assert set(error) == {"error"} and {"code", "message"} <= set(error["error"]), context
        assert log_position(api) == before, f"a refusal wrote to the log: {context}"


def test_every_kind_of_field_is_found_on_the_routes_that_have_it():
    kinds = {field.kind for field in FIELDS}
    assert kinds == set(EXTREMES), kinds
    names = {(field.path, field.name) for field in FIELDS}
    assert ("/v1/transfers/batch", "transfers.0.amount") in names
    assert ("/v1/accounts/{account_id}/balance", "at") in names


@pytest.mark.parametrize("field", FIELDS, ids=[field.id for field in FIELDS])
def test_no_extreme_value_of_a_field_gets_a_5xx_or_leaves_a_trace(api, admin, field):
    for value in EXTREMES[field.kind]:
        if field.location != "body" and value is None:
            continue  # an absent parameter is the valid request
        send_and_check(api, admin, field, value)


@pytest.mark.parametrize("field", FIELDS, ids=[field.id for field in FIELDS])
def test_no_generated_value_of_a_field_gets_a_5xx_or_leaves_a_trace(api, admin, field):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(value=STRATEGIES[field.kind])
    def check(value: Any) -> None:
        send_and_check(api, admin, field, value)

    check()
