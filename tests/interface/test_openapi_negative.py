"""schemathesis in negative mode: requests that break the app's own OpenAPI
(wrong types, missing or extra fields, out-of-range values, malformed path
and query parameters and content types, unspecified methods). None may
crash the service (no 5xx but 503), and every refusal is in the one error
shape and writes nothing to the event log. (The mode also yields a few
requests the schema allows, and violations a server may ignore, such as a
content type on a GET; those may succeed.) Bounded examples per operation;
DEALS_SCHEMATHESIS_EXAMPLES raises it for a longer run."""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from interface.http.app import create_app
from interface.http.auth import parse_api_keys
from interface.wiring.settings import Settings
from tests.interface.helpers import log_position
from tests.support.http import ADMIN, API_KEYS, bearer

EXAMPLES = int(os.environ.get("DEALS_SCHEMATHESIS_EXAMPLES", "15"))

STREAMS = ["/v1/events/stream"]
"""Routes whose answer never ends while the client listens (an SSE stream): a
generated request would wait out its timeout; tests/interface/test_events_api.py
checks their refusals."""

schema = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir=Path("unused")), keyring=parse_api_keys(API_KEYS)).openapi()
).exclude(path=STREAMS)
schema.config.generation.update(modes=[GenerationMode.NEGATIVE], with_security_parameters=False)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_requests_outside_the_schema_never_crash_and_refusals_write_nothing(case, api):
    before = log_position(api)
    response = case.call(base_url=api.url, headers=bearer(ADMIN))
    assert response.status_code < 500 or response.status_code == 503, response.text
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}, body
    assert log_position(api) == before, (case.method, case.formatted_path, response.text)
