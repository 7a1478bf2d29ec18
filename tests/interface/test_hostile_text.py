"""Hostile characters in every text field of every command body, over real
HTTP on both stores: a lone UTF-16 surrogate, a NUL and a bidirectional
control are each refused with a 4xx in the one error shape, and nothing is
applied (the event log and the webhook list are as before).

A lone surrogate used to pass ``metadata`` unchecked and fail the group
commit's encoding with a 500 for every command of the batch. The fields are
read from the app's own OpenAPI document, so a text field added later is
covered without a word here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from solders.keypair import Keypair

from tests.interface.helpers import funded_account, log_position, open_account
from tests.interface.test_field_extremes import DOCUMENT, SCHEMAS, STREAMS

HOSTILE = {"surrogate": "\ud800", "nul": "\x00", "bidi": "\u202e"}
VALID_TEXT = {
    "url": "https://example.com/hook", "secret": "whsec_" + "A" * 32, "kind": "user",
    "reason": "a reason", "external_ref": "ref-1", "reward_type": "referral",
    "types": "transfer.recorded",
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    options = [_resolve(s) for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


def _valid(name: str, schema: dict[str, Any], accounts: dict[str, str]) -> Any:
    """A valid value for every field, optional ones included, so each text
    field is present to be spoilt; accounts that exist, so a movement gets
    as far as its commit."""
    schema = _resolve(schema)
    if schema.get("format") == "uuid":
        return accounts.get(name, str(uuid4()))
    if name == "address":
        return str(Keypair().pubkey())
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    if schema.get("type") == "string" and "[0-9]" in schema.get("pattern", ""):
        return "1"
    if schema.get("type") == "integer":
        return 60 if name == "expires_in_s" else None
    if schema.get("type") == "boolean":
        return False
    if schema.get("type") == "array":
        return [_valid(name, schema["items"], accounts)]
    if schema.get("type") == "object" and "properties" in schema:
        return _valid_object(schema, accounts)
    if schema.get("type") == "object":
        return {"key": "value"}
    return VALID_TEXT.get(name, "text")


def _valid_object(schema: dict[str, Any], accounts: dict[str, str]) -> dict[str, Any]:
    values = {name: _valid(name, property_schema, accounts)
              for name, property_schema in schema.get("properties", {}).items()}
    return {name: value for name, value in values.items() if value is not None}


def _text_leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every string in a body, keys of free maps (metadata) included as
    ``(..., "metadata", "<key>")`` with ``"<key>"`` naming the key."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if path and path[-1] == "metadata":
                yield (*path, "<key>")
            yield from _text_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_leaves(item, (*path, str(index)))


def _spoilt(body: Any, leaf: tuple[str, ...], hostile: str) -> Any:
    body = json.loads(json.dumps(body))
    *parents, last = leaf
    target = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if last == "<key>":
        target[f"k{hostile}y"] = target.pop("key")
    elif isinstance(target, list):
        target[int(last)] = target[int(last)][:3] + hostile + target[int(last)][3:]
    else:
        target[last] = target[last][:3] + hostile + target[last][3:]
    return body


def _cases() -> list[tuple[str, str, tuple[str, ...], str]]:
    cases = []
    for path, operations in DOCUMENT["paths"].items():
        if path in STREAMS:
            continue
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            schema = _resolve(body["content"]["application/json"]["schema"])
            cases.extend((method.upper(), path, leaf, name)
                         for leaf in _text_leaves(_valid_object(schema, {})) for name in HOSTILE)
    return cases


CASES = _cases()


def _url(path: str) -> str:
    values = {"service_type": "search", "address": str(Keypair().pubkey())}
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            path = path.replace(part, quote(values.get(name, str(uuid4())), safe=""))
    return path


@pytest.fixture(scope="module")
def admin(api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


@pytest.fixture(scope="module")
def accounts(admin) -> dict[str, str]:
    source, destination = funded_account(admin), open_account(admin)
    return {"from": source, "account_id": source, "to": destination}


def test_the_text_fields_of_every_command_are_found():
    leaves = {(path, ".".join(leaf)) for _, path, leaf, _ in CASES}
    for expected in [("/v1/transfers", "reason"), ("/v1/transfers", "metadata.key"),
                     ("/v1/transfers", "metadata.<key>"), ("/v1/transfers", "external_ref"),
                     ("/v1/transfers/batch", "transfers.0.metadata.key"),
                     ("/v1/rewards", "reward_type"), ("/v1/holds", "metadata.key"),
                     ("/v1/webhooks", "url"), ("/v1/webhooks", "types.0"),
                     ("/v1/accounts/{account_id}/wallets", "address")]:
        assert expected in leaves, expected


@pytest.mark.parametrize(("method", "path", "leaf", "hostile"), CASES,
                         ids=[f"{m} {p} {'.'.join(f)} {h}" for m, p, f, h in CASES])
def test_a_hostile_character_in_any_text_field_is_refused_and_applies_nothing(
        api, admin, accounts, method, path, leaf, hostile):
    operation = DOCUMENT["paths"][path][method.lower()]
    schema = _resolve(operation["requestBody"]["content"]["application/json"]["schema"])
    body = _spoilt(_valid_object(schema, accounts), leaf, HOSTILE[hostile])
    before, hooks = log_position(api), admin.get("/v1/webhooks").json()
    response = admin.request(method, _url(path), content=json.dumps(body),
                             headers={"content-type": "application/json"})
    context = f"{json.dumps(body)[:200]}: {response.status_code} {response.text[:300]}"
    if response.status_code == 200 and path == "/v1/transfers/batch":
        # A non-atomic batch answers each item (API.md): the item is refused.
        assert [item["status"] for item in response.json()["results"]] == ["error"], context
    else:
        # A command on a thing that does not exist may be answered 404 first.
        assert response.status_code in (400, 404, 422), context
        assert set(response.json()) == {"error"}, context
        if response.status_code != 404:
            # Refused for the field itself, never by a failure further in.
            named = next(part for part in reversed(leaf)
                         if not part.isdigit() and part != "<key>")
            assert named in response.json()["error"]["message"], context
    assert log_position(api) == before, f"a refusal wrote to the log: {context}"
    assert admin.get("/v1/webhooks").json() == hooks, f"a refusal made a webhook: {context}"
