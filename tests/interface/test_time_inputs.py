"""Every time input reads time text by the one parser (domain.rfc3339): the
balance's ``at``, the ``since`` and ``until`` of history, transactions and
the movements found by a reference, the
audit's ``until``, a price rule's ``valid_from`` and ``valid_to`` and
``deals-ledger replay --until`` accept and refuse exactly the same texts
(tests/support/time_texts.py), and a refusal is 422 ``invalid_request``
naming the field, never a 500, and writes nothing. The OpenAPI document's
time inputs are exactly these, so a new one cannot miss the table."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from httpx import Response

from interface.cli.main import main
from tests.interface.cli_support import cli
from tests.interface.helpers import assert_error, funded_account, log_position
from tests.support.time_texts import ACCEPTED, REFUSED


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("text", list(REFUSED), ids=list(REFUSED))
def test_a_refused_time_is_refused_by_every_time_field(api, admin, text):
    account = funded_account(admin)
    before = log_position(api)
    answers = [
        ("valid_from", admin.put("/v1/pricing/goal", json={"token_cost": "1", "valid_from": text})),
        ("valid_to", admin.put("/v1/pricing/goal", json={"token_cost": "1", "valid_to": text})),
        ("until", admin.post("/v1/audit/replay", json={"until": text})),
        *_listed(admin, account, text),
    ]
    if not text.isdigit():  # digits in ``at`` are a log position
        answers.append(("at", admin.get(f"/v1/accounts/{account}/balance", params={"at": text})))
    for field, answer in answers:
        error = assert_error(answer, 422, "invalid_request")
        assert error["message"].startswith(f"{field}: "), (field, error)
    assert log_position(api) == before


def _listed(admin, account: str, text: str) -> list[tuple[str, Response]]:
    """History, transactions and the movements found by a reference, asked
    with ``text`` as each end of the range."""
    listings = [(f"/v1/accounts/{account}/{listing}", {}) for listing in ("history", "transactions")]
    listings.append(("/v1/transfers", {"external_ref": f"order-{account}"}))
    return [(field, admin.get(path, params={**params, field: text}))
            for path, params in listings for field in ("since", "until")]


@pytest.mark.parametrize("text", list(ACCEPTED), ids=list(ACCEPTED))
def test_an_accepted_time_is_accepted_by_every_time_field(api, admin, text):
    account = funded_account(admin)
    balance = admin.get(f"/v1/accounts/{account}/balance", params={"at": text})
    assert balance.status_code in (200, 404), balance.text  # 404: not opened yet
    assert admin.post("/v1/audit/replay", json={"until": text}).status_code == 200
    for field, listed in _listed(admin, account, text):
        assert listed.status_code == 200, (field, listed.text)
    ruled = admin.put("/v1/pricing/goal", json={"token_cost": "1", "valid_to": text})
    assert ruled.status_code == 200, ruled.text
    assert _instant(ruled.json()["valid_to"]) == _instant(ACCEPTED[text])


TIME_INPUTS = {
    ("get /v1/accounts/{account_id}/balance", "at"),
    ("get /v1/accounts/{account_id}/history", "since"),
    ("get /v1/accounts/{account_id}/history", "until"),
    ("get /v1/accounts/{account_id}/transactions", "since"),
    ("get /v1/accounts/{account_id}/transactions", "until"),
    ("get /v1/transfers", "since"),
    ("get /v1/transfers", "until"),
    ("put /v1/pricing/{service_type}", "valid_from"),
    ("put /v1/pricing/{service_type}", "valid_to"),
    ("post /v1/audit/replay", "until"),
}
"""The time inputs the tests above send every text of the table to."""


def test_the_table_reaches_every_time_input_the_openapi_document_declares(api, admin):
    document = admin.get("/openapi.json").json()
    declared = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = f"{method} {path}"
            declared |= {(route, p["name"]) for p in operation.get("parameters", [])
                         if "RFC 3339" in json.dumps(p)}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                declared |= {(route, name) for name in _time_fields(document, body["schema"])}
    assert declared == TIME_INPUTS


def _time_fields(document: dict, schema: dict) -> set[str]:
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    found = {name for name, field in schema.get("properties", {}).items()
             if "date-time" in json.dumps(field)}
    for nested in [*schema.get("properties", {}).values(), *schema.get("anyOf", []),
                   *([schema["items"]] if "items" in schema else [])]:
        found |= _time_fields(document, nested)
    return found


def test_the_time_at_the_end_of_the_range_answers_the_balance_now(api, admin):
    account = funded_account(admin)
    answer = admin.get(f"/v1/accounts/{account}/balance",
                       params={"at": "9999-12-31T23:59:59+01:00",
                               "min_position": log_position(api)})
    assert answer.status_code == 200 and answer.json()["balance"] == "100", answer.text


@pytest.mark.parametrize("text", list(REFUSED), ids=list(REFUSED))
def test_replay_until_refuses_what_the_api_refuses(tmp_path, monkeypatch, capsys, text):
    """In process: the option is parsed before any store is opened."""
    monkeypatch.setenv("DEALS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    assert main(["replay", "--until", text]) == 2  # a usage error, as argparse's own
    error = capsys.readouterr().err
    assert error.startswith("deals-ledger: invalid_request: --until: "), error
    assert REFUSED[text] in error
    assert not (tmp_path / "var" / "events.sqlite").exists()


def test_replay_until_takes_a_lower_case_rfc3339_time(ledger, store):
    result = cli(store, "replay", "--until", "2999-01-01t00:00:00z")
    assert result.returncode == 0, result.stderr
