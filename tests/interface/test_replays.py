"""Over HTTP, a repeated command answers exactly its first answer, byte for
byte, with status 200 and ``Idempotent-Replayed: true``, after the state it
answered about moved on (settled, captured, reversed, re-priced); and the
``Idempotency-Key`` header must name the command's id. On SQLite and on
PostgreSQL + Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from solders.keypair import Keypair

from domain.transfer import EXPIRED
from interface.http.idempotency import KEY_HEADER, REPLAYED_HEADER
from tests.interface.helpers import (
    assert_error,
    funded_account,
    log_position,
    new_id,
    open_account,
    transfer_body,
)
from tests.support.http import READER, WRITER, wait_until
from tests.support.settling import settle_through

EXPIRY_WAIT_S = 30
"""A 1 s hold is released within 2 s of expiry; generous for a busy machine."""


def settle(api, *transfer_ids: str) -> None:
    settle_through(api, *transfer_ids)


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None
    setting: dict[str, str] = field(default_factory=dict)
    """What ``prepare`` made for ``later`` to use (not sent)."""

    def send(self, client: httpx.Client, headers: dict[str, str] | None = None
             ) -> httpx.Response:
        return client.request(self.method, self.path, json=self.body, headers=headers)


@dataclass
class Case:
    """A route's request (made after ``prepare``), the status of its first
    answer, and what moves the world on before the repeat."""

    name: str
    prepare: Callable[[Any, httpx.Client], Request]
    later: Callable[[Any, httpx.Client, Request, dict], None]
    created: bool = True


def _post(client: httpx.Client, path: str, body: dict | None = None) -> dict:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _transfer(api, admin):
    return Request("POST", "/v1/transfers", transfer_body(funded_account(admin, "10"),
                                                          open_account(admin), "3"))


def _settle_then_move(api, admin, request, first):
    movement = first.get("transfer_id") or first.get("charge_id") or first.get("reward_id")
    settle(api, movement)
    assert admin.get(f"/v1/transfers/{movement}").json()["status"] == "settled"
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": open_account(admin),
                              "amount": "1"})


def _transfer_from(api, admin):
    owner, spender = funded_account(admin, "10"), open_account(admin)
    assert admin.put(f"/v1/allowances/{owner}/{spender}", json={"amount": "5"}).status_code == 200
    body = {**transfer_body(owner, open_account(admin), "2"), "spender": spender}
    return Request("POST", "/v1/transfers/from", body)


def _reverse(api, admin):
    original = _post(admin, "/v1/transfers", transfer_body(funded_account(admin, "10"),
                                                            open_account(admin), "3"))
    settle(api, original["transfer_id"])
    return Request("POST", f"/v1/transfers/{original['transfer_id']}/reverse",
                   {"reversal_id": new_id(), "reason": "mistake"})


def _fee(api, admin):
    return Request("POST", "/v1/fees", {"charge_id": new_id(),
                                        "account_id": funded_account(admin, "10"),
                                        "service_type": "notification"})


def _fee_later(api, admin, request, first):
    assert admin.put("/v1/pricing/notification", json={"token_cost": "0.07"}).status_code == 200
    _settle_then_move(api, admin, request, first)


def _reward(api, admin):
    return Request("POST", "/v1/rewards", {"reward_id": new_id(), "account_id": open_account(admin),
                                           "reward_type": "referral", "amount": "2"})


def _mint(api, admin):
    return Request("POST", "/v1/mint", {"transfer_id": new_id(), "to": open_account(admin),
                                        "amount": "4"})


def _burn(api, admin):
    return Request("POST", "/v1/burn", {"transfer_id": new_id(),
                                        "from": funded_account(admin, "4"), "amount": "1"})


def _open(api, admin):
    return Request("POST", "/v1/accounts", {"account_id": new_id(), "kind": "user"})


def _open_later(api, admin, request, first):
    account = first["account_id"]
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": account, "amount": "1"})
    _post(admin, f"/v1/accounts/{account}/freeze")


def _hold(api, admin):
    return Request("POST", "/v1/holds", {"hold_id": new_id(),
                                         "account_id": funded_account(admin, "10"),
                                         "amount": "2"})


def _hold_later(api, admin, request, first):
    """Another hold lowers what is available; this one is captured and settled."""
    _post(admin, "/v1/holds", {"hold_id": new_id(), "account_id": first["account_id"],
                               "amount": "1"})
    _post(admin, f"/v1/holds/{first['hold_id']}/capture", {"amount": "1"})
    settle(api, first["hold_id"])


def _capture(api, admin):
    placed = _post(admin, "/v1/holds", _hold(api, admin).body)
    return Request("POST", f"/v1/holds/{placed['hold_id']}/capture", {"amount": "1.5"})


def _capture_later(api, admin, request, first):
    settle(api, first["hold_id"])
    _post(admin, f"/v1/transfers/{first['hold_id']}/reverse", {"reversal_id": new_id()})
    assert admin.get(f"/v1/transfers/{first['hold_id']}").json()["status"] == "reversed"


def _void(api, admin):
    placed = _post(admin, "/v1/holds", _hold(api, admin).body)
    return Request("POST", f"/v1/holds/{placed['hold_id']}/void")


def _void_later(api, admin, request, first):
    _post(admin, "/v1/holds", {"hold_id": new_id(), "account_id": first["account_id"],
                               "amount": "1"})


def _freeze(api, admin):
    account = funded_account(admin, "5")
    hold = _post(admin, "/v1/holds", {"hold_id": new_id(), "account_id": account, "amount": "1",
                                      "expires_in_s": 1})
    return Request("POST", f"/v1/accounts/{account}/freeze", setting={"hold": hold["hold_id"]})


def _freeze_later(api, admin, request, first):
    """The frozen account's hold expires and the service's sweeper records
    its release (in the log: reads count it released at once): the account
    moves on."""
    hold = UUID(request.setting["hold"])
    wait_until(lambda: api.service.app.load(hold).phase == EXPIRED, EXPIRY_WAIT_S,
               "the sweeper to record the hold's expiry")


def _unfreeze(api, admin):
    account = funded_account(admin, "5")
    _post(admin, f"/v1/accounts/{account}/freeze")
    return Request("POST", f"/v1/accounts/{account}/unfreeze")


def _unfreeze_later(api, admin, request, first):
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": first["account_id"], "amount": "1"})


def _allowance(api, admin):
    return Request("PUT", f"/v1/allowances/{funded_account(admin, '5')}/{open_account(admin)}",
                   {"amount": "2"})


def _allowance_later(api, admin, request, first):
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": first["owner"], "amount": "1"})
    assert admin.put(f"/v1/allowances/{first['owner']}/{open_account(admin)}",
                     json={"amount": "1"}).status_code == 200


def _price(api, admin):
    return Request("PUT", "/v1/pricing/goal", {"token_cost": f"{uuid4().int % 1000 + 1}.5"})


def _price_later(api, admin, request, first):
    assert admin.put("/v1/pricing/analysis", json={"token_cost": "0.6"}).status_code == 200
    _post(admin, "/v1/fees", {"charge_id": new_id(), "account_id": funded_account(admin, "5000"),
                              "service_type": "goal"})


def _batch(api, admin):
    source, destination = funded_account(admin, "10"), open_account(admin)
    return Request("POST", "/v1/transfers/batch", {"atomic": True, "transfers": [
        transfer_body(source, destination, "1") for _ in range(3)]})


def _batch_later(api, admin, request, first):
    settle(api, *(item["transfer_id"] for item in first["results"][:2]))
    item = request.body["transfers"][0]
    _post(admin, "/v1/transfers", transfer_body(item["from"], item["to"], "1"))


CASES = [
    Case("transfer", _transfer, _settle_then_move),
    Case("transfer_from", _transfer_from, _settle_then_move),
    Case("reversal", _reverse, _settle_then_move),
    Case("fee", _fee, _fee_later),
    Case("reward", _reward, _settle_then_move),
    Case("mint", _mint, _settle_then_move),
    Case("burn", _burn, _settle_then_move),
    Case("open_account", _open, _open_later),
    Case("place_hold", _hold, _hold_later),
    Case("capture_hold", _capture, _capture_later, created=False),
    Case("void_hold", _void, _void_later, created=False),
    Case("freeze", _freeze, _freeze_later, created=False),
    Case("unfreeze", _unfreeze, _unfreeze_later, created=False),
    Case("set_allowance", _allowance, _allowance_later, created=False),
    Case("set_price_rule", _price, _price_later, created=False),
    Case("batch", _batch, _batch_later, created=False),
]


def _send_first(case: Case, api, admin) -> tuple[Request, httpx.Response]:
    request = case.prepare(api, admin)
    first = request.send(admin)
    assert first.status_code == (201 if case.created else 200), first.text
    assert REPLAYED_HEADER not in first.headers
    return request, first


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_repeat_answers_the_first_answer_byte_for_byte(api, admin, case):
    request, first = _send_first(case, api, admin)
    case.later(api, admin, request, first.json())
    before = log_position(api)
    repeat = request.send(admin)
    assert repeat.status_code == 200, repeat.text
    assert repeat.headers[REPLAYED_HEADER] == "true"
    assert repeat.content == first.content
    assert log_position(api) == before


def test_the_transfer_route_still_gives_the_current_status(api, admin):
    request = _transfer(api, admin)
    first = request.send(admin)
    settle(api, first.json()["transfer_id"])
    repeat = request.send(admin)
    current = admin.get(f"/v1/transfers/{first.json()['transfer_id']}").json()
    assert (first.json()["status"], repeat.json()["status"], current["status"]) == (
        "pending", "pending", "settled")
    assert current["position"] == first.json()["position"]


def test_a_batch_with_a_refused_item_retries_that_item_and_is_no_replay(api, admin):
    """A refusal leaves no trace: the repeat tries the refused item anew."""
    source, destination = funded_account(admin, "1"), open_account(admin)
    body = {"atomic": False, "transfers": [transfer_body(source, destination, "1"),
                                           transfer_body(source, destination, "1")]}
    first = admin.post("/v1/transfers/batch", json=body)
    assert [r["status"] for r in first.json()["results"]] == ["ok", "error"]
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": source, "amount": "1"})
    repeat = admin.post("/v1/transfers/batch", json=body)
    assert repeat.status_code == 200 and REPLAYED_HEADER not in repeat.headers
    assert [r["status"] for r in repeat.json()["results"]] == ["ok", "ok"]


def test_a_refused_command_retried_is_a_new_attempt(api, admin):
    source, destination = funded_account(admin, "1"), open_account(admin)
    body = transfer_body(source, destination, "2")
    assert_error(admin.post("/v1/transfers", json=body), 402, "insufficient_balance")
    _post(admin, "/v1/mint", {"transfer_id": new_id(), "to": source, "amount": "1"})
    retried = admin.post("/v1/transfers", json=body)
    assert retried.status_code == 201 and REPLAYED_HEADER not in retried.headers


def test_a_wallet_connected_again_is_refused_as_api_md_says(api, admin):
    """Wallet commands carry no id: API.md makes a live address 409 even on
    its own account, and a second disconnect finds no wallet (404)."""
    account, address = open_account(admin), str(Keypair().pubkey())
    path = f"/v1/accounts/{account}/wallets"
    assert admin.post(path, json={"address": address}).status_code == 201
    assert_error(admin.post(path, json={"address": address}), 409, "wallet_already_connected")


# Idempotency-Key


@pytest.mark.parametrize("matching_first", [True, False], ids=["id-first", "other-first"])
def test_two_idempotency_key_lines_are_refused_in_either_order(api, admin, matching_first):
    """Repeated lines are one comma-joined value: which key was meant is
    unknown, so nothing is executed (the second line is not ignored)."""
    body = transfer_body(funded_account(admin, "5"), open_account(admin))
    keys = [body["transfer_id"], str(uuid4())]
    if not matching_first:
        keys.reverse()
    headers = httpx.Headers([(KEY_HEADER, key) for key in keys])
    error = assert_error(admin.post("/v1/transfers", json=body, headers=headers),
                         422, "invalid_request")
    assert KEY_HEADER in error["message"]
    shown = admin.get(f"/v1/transfers/{body['transfer_id']}")
    assert_error(shown, 404, "transfer_not_found")


@pytest.mark.parametrize(("token", "status", "code"), [
    (None, 401, "unauthorized"), ("not-a-key", 401, "unauthorized"),
    (READER, 403, "forbidden"), (WRITER, 422, "invalid_request"),
], ids=["no-token", "unknown-token", "reader", "writer"])
def test_the_key_header_is_validated_after_the_token_and_the_scope(api, token, status, code):
    """The scope guard and the key header are one dependency of a command
    route (``deps.WriteCommand``): an over-long key (validated by FastAPI,
    before the route's own code) must still answer 401 and 403 first, as
    separate dependencies did, and then name the header, with the body's
    own error beside it."""
    with api.client(token) as client:
        answer = client.post("/v1/transfers", json={"amount": "1"},
                             headers={KEY_HEADER: "x" * 101})
    error = assert_error(answer, status, code)
    if status == 422:
        assert KEY_HEADER in error["message"] and "transfer_id" in error["message"]


@pytest.mark.parametrize("quoted", [True, False], ids=["structured-field", "bare"])
def test_an_idempotency_key_equal_to_the_id_is_accepted(api, admin, quoted):
    body = transfer_body(funded_account(admin, "5"), open_account(admin))
    key = f'"{body["transfer_id"]}"' if quoted else body["transfer_id"]
    first = admin.post("/v1/transfers", json=body, headers={KEY_HEADER: key})
    assert first.status_code == 201, first.text
    repeat = admin.post("/v1/transfers", json=body, headers={KEY_HEADER: key})
    assert repeat.status_code == 200 and repeat.content == first.content


@pytest.mark.parametrize("key", [str(uuid4()), "not-a-uuid", '"', ""])
def test_an_idempotency_key_other_than_the_id_is_refused_naming_both(api, admin, key):
    body = transfer_body(funded_account(admin, "5"), open_account(admin))
    before = log_position(api)
    error = assert_error(admin.post("/v1/transfers", json=body, headers={KEY_HEADER: key}),
                         422, "invalid_request")
    assert KEY_HEADER in error["message"]
    if key.count("-") == 4:
        assert "transfer_id" in error["message"] and body["transfer_id"] in error["message"]
    assert log_position(api) == before


def test_the_key_is_checked_against_each_commands_own_id_field(api, admin):
    hold = _hold(api, admin).body
    wrong = {KEY_HEADER: new_id()}
    error = assert_error(admin.post("/v1/holds", json=hold, headers=wrong), 422,
                         "invalid_request")
    assert "hold_id" in error["message"]
    placed = admin.post("/v1/holds", json=hold, headers={KEY_HEADER: hold["hold_id"]})
    assert placed.status_code == 201
    capture = f"/v1/holds/{hold['hold_id']}/capture"
    assert_error(admin.post(capture, headers=wrong), 422, "invalid_request")
    assert admin.post(capture, headers={KEY_HEADER: hold["hold_id"]}).status_code == 200
    fee = {"charge_id": new_id(), "account_id": hold["account_id"], "service_type": "search"}
    error = assert_error(admin.post("/v1/fees", json=fee, headers=wrong), 422, "invalid_request")
    assert "charge_id" in error["message"]


@pytest.mark.parametrize("request_of", [_batch, _allowance, _price], ids=["batch", "allowance",
                                                                          "price"])
def test_a_command_without_an_id_takes_no_idempotency_key(api, admin, request_of):
    request = request_of(api, admin)
    before = log_position(api)
    error = assert_error(request.send(admin, headers={KEY_HEADER: new_id()}), 422,
                         "invalid_request")
    assert KEY_HEADER in error["message"]
    assert log_position(api) == before


QUERIES_BY_POST = {("post", "/v1/audit/replay")}
"""A POST that changes nothing: a key would promise nothing, so none is declared."""


def test_the_openapi_document_declares_the_header_and_the_replay(api, admin):
    document = admin.get("/openapi.json").json()
    operation = document["paths"]["/v1/transfers"]["post"]
    assert REPLAYED_HEADER in operation["responses"]["200"]["headers"]
    undeclared = [
        (method, path) for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "delete") and (method, path) not in QUERIES_BY_POST
        and not any(p["name"] == KEY_HEADER and p["in"] == "header"
                    for p in operation.get("parameters", []))
    ]
    assert undeclared == [], "command routes without the Idempotency-Key header"
