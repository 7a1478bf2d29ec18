"""A default written out is the same request as a default left out: for
every command whose request has an optional field with a documented
default, the body with every default written out repeats as a replay (200,
``Idempotent-Replayed: true``) of the body without them, in either order,
on SQLite and on PostgreSQL with Redis; and a body that does differ is
refused naming the field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from application.commands import HOLD_EXPIRY_S_DEFAULT
from interface.http.schemas import requests
from tests.interface.helpers import assert_error, funded_account, new_id, open_account
from tests.support.settling import settle_through


@dataclass(frozen=True)
class Case:
    """One command route: how to make a fresh body without the defaults,
    and the defaults as the API documents them."""

    schema: type[requests.Request]
    path: Callable[[Any], str]
    """The route, from the test's server (``api``)."""
    body: Callable[[httpx.Client], dict]
    defaults: dict


def _transfer(admin: httpx.Client) -> dict:
    return {"transfer_id": new_id(), "from": funded_account(admin, "10"),
            "to": open_account(admin), "amount": "1"}


def _transfer_from(admin: httpx.Client) -> dict:
    owner, spender = funded_account(admin, "10"), open_account(admin)
    allowed = admin.put(f"/v1/allowances/{owner}/{spender}", json={"amount": "5"})
    assert allowed.status_code in (200, 201), allowed.text
    return {"transfer_id": new_id(), "spender": spender, "from": owner,
            "to": open_account(admin), "amount": "1"}


def _reversible(api: Any) -> str:
    """A settled transfer's reversal route (a pending one is not reversible)."""
    with api.client() as admin:
        moved = admin.post("/v1/transfers", json=_transfer(admin))
    assert moved.status_code == 201, moved.text
    settle_through(api, moved.json()["transfer_id"])
    return f"/v1/transfers/{moved.json()['transfer_id']}/reverse"


CASES = {
    "open_account": Case(requests.OpenAccountRequest, lambda _: "/v1/accounts",
                         lambda _: {"account_id": new_id()}, {"kind": "user"}),
    "transfer": Case(requests.TransferRequest, lambda _: "/v1/transfers", _transfer,
                     {"reason": ""}),
    "batch": Case(requests.TransferBatchRequest, lambda _: "/v1/transfers/batch",
                  lambda admin: {"transfers": [_transfer(admin)]}, {"atomic": False}),
    "transfer_from": Case(requests.TransferFromRequest, lambda _: "/v1/transfers/from",
                          _transfer_from, {"reason": ""}),
    "reverse": Case(requests.ReverseRequest, _reversible,
                    lambda _: {"reversal_id": new_id()}, {"reason": ""}),
    "mint": Case(requests.MintRequest, lambda _: "/v1/mint",
                 lambda admin: {"transfer_id": new_id(), "to": open_account(admin),
                                "amount": "1"}, {"reason": ""}),
    "burn": Case(requests.BurnRequest, lambda _: "/v1/burn",
                 lambda admin: {"transfer_id": new_id(), "from": funded_account(admin, "5"),
                                "amount": "1"}, {"reason": ""}),
    "hold": Case(requests.HoldRequest, lambda _: "/v1/holds",
                 lambda admin: {"hold_id": new_id(), "account_id": funded_account(admin, "5"),
                                "amount": "1"}, {"expires_in_s": HOLD_EXPIRY_S_DEFAULT}),
}
"""Every request with a documented default: a plain default in the schema,
or, for ``expires_in_s``, one the ledger fills (README: 900 s)."""


def test_the_table_names_every_request_with_a_default():
    """A new optional field with a default joins the table, or this fails."""
    with_defaults = {
        schema for schema in vars(requests).values()
        if isinstance(schema, type) and issubclass(schema, requests.Request)
        and schema is not requests.Request and schema is not requests.AuditReplayRequest
        and any(not field.is_required() and field.default is not None
                for field in schema.model_fields.values())
    }
    covered = {case.schema for case in CASES.values()}
    assert with_defaults <= covered, with_defaults - covered
    for case in CASES.values():
        names = {field.alias or name for name, field in case.schema.model_fields.items()}
        assert set(case.defaults) <= names


def _written_out(body: dict, defaults: dict) -> dict:
    if "transfers" in body:  # a batch: its items' defaults too
        items = [{**item, **CASES["transfer"].defaults} for item in body["transfers"]]
        return {**body, "transfers": items, **defaults}
    return {**body, **defaults}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("defaults_first", [False, True], ids=["left-out-first",
                                                               "written-out-first"])
def test_a_default_written_out_repeats_as_a_replay(api, admin, name, defaults_first):
    case = CASES[name]
    bare = case.body(admin)
    full = _written_out(bare, case.defaults)
    first, second = (full, bare) if defaults_first else (bare, full)
    path = case.path(api)
    made = admin.post(path, json=first)
    assert made.status_code in (200, 201), made.text
    again = admin.post(path, json=second)
    assert again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == made.json()


def test_a_hold_with_another_expiry_is_refused_naming_the_field(api, admin):
    body = {"hold_id": new_id(), "account_id": funded_account(admin, "5"), "amount": "1",
            "expires_in_s": 60}
    assert admin.post("/v1/holds", json=body).status_code == 201
    for other in ({k: v for k, v in body.items() if k != "expires_in_s"},
                  {**body, "expires_in_s": HOLD_EXPIRY_S_DEFAULT}):
        error = assert_error(admin.post("/v1/holds", json=other), 409, "idempotency_conflict")
        assert "'expires_in_s'" in error["message"], error
