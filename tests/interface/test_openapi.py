"""schemathesis against the app's own OpenAPI, over real HTTP on both stores:
no generated input (valid or not) gets a 500, and every answer matches the
documented status codes, content types and schemas. A bounded number of
examples per operation keeps it in CI time; DEALS_SCHEMATHESIS_EXAMPLES
raises it for a longer run (marked slow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interface.http.app import create_app
from interface.http.auth import parse_api_keys
from interface.wiring.settings import Settings
from tests.support.http import ADMIN, API_KEYS, bearer

EXAMPLES = int(os.environ.get("DEALS_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]

STREAMS = ["/v1/events/stream"]
"""Routes whose answer never ends while the client listens (an SSE stream): a
generated request would wait out its timeout; tests/interface/test_events_api.py
checks their refusals."""

schema = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused")), keyring=parse_api_keys(API_KEYS)).openapi()
).exclude(path=STREAMS)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_documented_answers_and_never_500(case, api):
    response = case.call(base_url=api.url, headers=bearer(ADMIN))
    # 503 is a documented answer (store or read model unavailable); 500 never is.
    assert response.status_code != 500, response.text
    case.validate_response(response, checks=CHECKS)


def test_the_openapi_document_describes_every_route_and_refusal():
    document = schema.raw_schema
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    transfer = document["paths"]["/v1/transfers"]["post"]
    assert {"200", "201", "401", "402", "403", "404", "409", "422", "423", "429",
            "503"} <= set(transfer["responses"])
    assert transfer["requestBody"]["content"]["application/json"]["schema"]


@pytest.mark.slow
def test_docs_page_is_served(api):
    import httpx

    assert "swagger" in httpx.get(f"{api.url}/docs").text.lower()


def test_operation_ids_read_as_the_ledger_speaks():
    """A client generated in any language calls ``charge_fee``, not
    ``charge_fee_v1_fees_post``: each id is the route function's name,
    snake_case, unique, with no path or method in it."""
    import re

    ids = [operation["operationId"] for path in schema.raw_schema["paths"].values()
           for operation in path.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
    unreadable = [i for i in ids if not re.fullmatch(r"[a-z]+(_[a-z]+)*", i)
                  or re.search(r"_(v1|get|post|put|delete)(_|$)", i)]
    assert not unreadable, unreadable
    assert {"charge_fee", "get_balance", "transfer", "distribute_reward", "place_hold",
            "get_history", "get_transfer", "audit_replay", "reconcile"} <= set(ids)


def test_error_codes_are_an_enum_of_every_code_the_service_answers():
    from interface.http.errors import STATUS_BY_CODE

    schemas = schema.raw_schema["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == set(STATUS_BY_CODE)
    for model in ("ErrorDetail", "ItemError"):
        assert schemas[model]["properties"]["code"]["$ref"] == "#/components/schemas/ErrorCode"
