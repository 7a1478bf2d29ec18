"""Query strings: a NUL, a control or bidi character in any query parameter
of any route, and any parameter given twice, are refused 422 in the one
error shape, on both stores. A NUL used to reach PostgreSQL (which cannot
hold one in text) and answer 503 with a false store-unreachable alert;
``?order=desc&order=asc`` silently took the last value. The routes and
their parameters are read from the app's own OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from eventsourcing.persistence import DataError

from interface.http.errors import as_ledger_error
from tests.interface.test_field_extremes import DOCUMENT, STREAMS
from tests.interface.test_hostile_text import _url

VALUES = {"nul": "a\x00b", "escape": "a\x1bb", "bidi": "a\u202eb"}


def _parameters() -> list[tuple[str, str]]:
    return [(path, parameter["name"])
            for path, operations in DOCUMENT["paths"].items() if path not in STREAMS
            for method, operation in operations.items() if method == "get"
            for parameter in operation.get("parameters", []) if parameter["in"] == "query"]


PARAMETERS = _parameters()


@pytest.fixture(scope="module")
def admin(api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def test_the_text_query_parameters_are_found():
    for expected in [("/v1/transfers", "external_ref"), ("/v1/events", "types"),
                     ("/v1/accounts/{account_id}/history", "reward_type")]:
        assert expected in PARAMETERS, expected


@pytest.mark.parametrize(("path", "name"), PARAMETERS, ids=[f"{p} {n}" for p, n in PARAMETERS])
def test_a_control_character_in_any_query_parameter_is_invalid(api, admin, path, name):
    for label, value in VALUES.items():
        response = admin.get(_url(path), params={name: value})
        context = f"{label}: {response.status_code} {response.text[:300]}"
        assert response.status_code == 422, context
        error = response.json()["error"]
        assert error["code"] == "invalid_request", context
        assert error["message"].startswith(f"{name}:"), context


@pytest.mark.parametrize(("path", "name"), PARAMETERS, ids=[f"{p} {n}" for p, n in PARAMETERS])
def test_a_query_parameter_given_twice_is_invalid(api, admin, path, name):
    response = admin.get(_url(path), params=[(name, "1"), (name, "2")])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith(f"{name}:")
    assert "more than once" in error["message"]


@pytest.mark.parametrize("error", [DataError("text cannot hold NUL"),
                                   psycopg.DataError("text cannot hold NUL")])
def test_a_value_the_store_refuses_is_the_requests_fault_not_an_outage(error):
    assert as_ledger_error(error).code == "invalid_request"
