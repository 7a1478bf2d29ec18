"""Hostile input over real HTTP, on SQLite and on PostgreSQL with Redis.

Every request here is one a careless or malicious client could send: deeply
nested or huge JSON, unicode tricks, injection strings, ids reused across
command kinds, amounts and times at and past their limits. Each must get a
documented 4xx in the one error shape, and write nothing: the event log's
position is the same after the refusal as before it. (Free text that merely
looks like an injection is data: it is stored and answered back verbatim.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest
from solders.keypair import Keypair

from tests.interface.helpers import (
    assert_error,
    funded_account,
    log_position,
    new_id,
    open_account,
)
from tests.support.http import ThreadServer

JSON = {"content-type": "application/json"}
NESTING_LEVELS = 100_000

INJECTIONS = (
    "'; DROP TABLE accounts; --",
    "\" OR \"1\"=\"1",
    "1; SELECT pg_sleep(10)",
    "*3\r\n$3\r\nDEL\r\n$1\r\n*\r\n",
    "FLUSHALL",
    "${jndi:ldap://127.0.0.1/x}",
    "../../../../etc/passwd",
    "deals:balance:*",
)



@contextmanager
def writes_nothing(server: ThreadServer) -> Iterator[None]:
    before = log_position(server)
    yield
    assert log_position(server) == before, "a refused request wrote to the event log"


def refused(server: ThreadServer, send: Callable[[], httpx.Response],
            status: int | tuple[int, ...], code: str | tuple[str, ...]) -> dict:
    """Send, expect a documented refusal, and check the log did not move."""
    with writes_nothing(server):
        response = send()
    statuses = status if isinstance(status, tuple) else (status,)
    codes = code if isinstance(code, tuple) else (code,)
    assert response.status_code in statuses, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] in codes, body
    return body["error"]


def raw_post(client: httpx.Client, path: str, text: str | bytes) -> Callable[[], httpx.Response]:
    return lambda: client.post(path, content=text, headers=JSON)


def raw_transfer(source: str, destination: str, *, amount: str = '"1"',
                 reason: str = '""') -> str:
    """A transfer's JSON text with the amount and reason given as raw JSON."""
    text = json.dumps({"transfer_id": new_id(), "from": source, "to": destination,
                       "amount": "@amount@", "reason": "@reason@"})
    return text.replace('"@amount@"', amount).replace('"@reason@"', reason)


# --- huge and deeply nested JSON ------------------------------------------------


@pytest.mark.parametrize("document", [
    "[" * NESTING_LEVELS + "]" * NESTING_LEVELS,
    '{"a":' * NESTING_LEVELS + "1" + "}" * NESTING_LEVELS,
], ids=["arrays", "objects"])
def test_deeply_nested_json_is_bad_request_not_a_recursion_crash(api, admin, document):
    refused(api, raw_post(admin, "/v1/transfers", document), 400, "bad_request")
    assert admin.get("/health").status_code == 200


def test_deeply_nested_json_inside_a_field_is_refused(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    nested = "[" * NESTING_LEVELS + "]" * NESTING_LEVELS
    text = raw_transfer(source, destination, reason=nested)
    refused(api, raw_post(admin, "/v1/transfers", text), 400, "bad_request")


def test_a_huge_string_under_the_body_limit_is_refused_by_validation(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
            "reason": "x" * 3_000_000}
    refused(api, lambda: admin.post("/v1/transfers", json=body), 422, "invalid_request")


def test_a_huge_array_of_items_is_refused_without_applying_any(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    item = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
            "reason": ""}
    body = {"transfers": [item] * 20_000, "atomic": False}
    refused(api, lambda: admin.post("/v1/transfers/batch", json=body), 422, "invalid_request")


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 5000, "0.1", "1E+2"])
def test_an_amount_as_a_json_number_of_any_size_is_refused(api, admin, number):
    source, destination = funded_account(admin), open_account(admin)
    text = raw_transfer(source, destination, amount=number)
    refused(api, raw_post(admin, "/v1/transfers", text), (400, 422),
            ("bad_request", "invalid_amount"))


def test_bytes_that_are_not_utf8_are_bad_request(api, admin):
    refused(api, raw_post(admin, "/v1/transfers", b'{"reason": "\xff\xfe\xfd"}'), 400,
            "bad_request")


# --- unicode tricks -------------------------------------------------------------


@pytest.mark.parametrize("reason", [
    "pay \u202egnp.exe",          # right-to-left override
    "pay \u2066hidden\u2069",     # directional isolate
    "nul \x00 byte",
    "escape \x1b[31m red",
    "line\r\nInjected: header",
], ids=["rtl-override", "isolate", "nul", "ansi-escape", "crlf"])
def test_reasons_with_control_or_bidi_characters_are_refused(api, admin, reason):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
            "reason": reason}
    refused(api, lambda: admin.post("/v1/transfers", json=body), 422, "invalid_request")


def test_a_lone_surrogate_escape_in_a_reason_is_refused(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    text = raw_transfer(source, destination, reason='"half \\ud800 pair"')
    refused(api, raw_post(admin, "/v1/transfers", text), (400, 422),
            ("bad_request", "invalid_request"))


def test_zero_width_and_emoji_text_is_data_kept_verbatim(api, admin):
    """Zero-width joiners and spaces are refused nowhere: emoji sequences and
    several scripts need them, and they cannot reorder what is displayed
    (bidi controls, refused above, can)."""
    source, destination = funded_account(admin), open_account(admin)
    reason = "family \U0001f468\u200d\U0001f469\u200d\U0001f467 zero\u200bwidth"
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
            "reason": reason}
    answer = admin.post("/v1/transfers", json=body)
    assert answer.status_code == 201, answer.text
    history = admin.get(f"/v1/accounts/{destination}/history",
                        params={"min_position": answer.json()["position"]})
    assert history.json()["items"][-1]["reason"] == reason


def _valid_address() -> str:
    return str(Keypair().pubkey())


@pytest.mark.parametrize("disguise", [
    lambda a: "\u202e" + a,                         # RTL override in front
    lambda a: a + "\u200b",                         # zero-width space behind
    lambda a: a[:10] + "\u0410" + a[11:],           # Cyrillic A for a Latin A
    lambda a: a[:10] + "l" + a[11:],                # l, 0, O, I are not base58
    lambda a: a[:10] + "0" + a[11:],
    lambda a: "".join(chr(ord(ch) + 0xFEE0) for ch in a),  # fullwidth forms
    lambda a: a[:5] + "\x00" + a[5:],
    lambda a: a + a,                                # too long
    lambda a: a[:20],                               # too short
], ids=["rtl", "zero-width", "cyrillic", "letter-l", "digit-0", "fullwidth", "nul",
        "doubled", "truncated"])
def test_disguised_wallet_addresses_are_invalid(api, admin, disguise):
    account = open_account(admin)
    address = disguise(_valid_address())
    refused(api, lambda: admin.post(f"/v1/accounts/{account}/wallets",
                                    json={"address": address}),
            422, "invalid_wallet_address")
    refused(api, lambda: admin.delete(
        f"/v1/accounts/{account}/wallets/{quote(address, safe='')}"),
            (404, 422), ("invalid_wallet_address", "not_found", "wallet_not_found"))


# --- injection strings ----------------------------------------------------------


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_in_structured_fields_are_refused(api, admin, text):
    source, destination = funded_account(admin), open_account(admin)
    transfer = {"transfer_id": new_id(), "from": source, "to": destination, "amount": "1",
                "reason": ""}
    for field in ("transfer_id", "from", "to"):
        body = {**transfer, field: text}
        refused(api, lambda b=body: admin.post("/v1/transfers", json=b), 422,
                "invalid_request")
    refused(api, lambda: admin.post("/v1/transfers", json={**transfer, "amount": text}),
            422, "invalid_amount")
    refused(api, lambda: admin.post("/v1/accounts",
                                    json={"account_id": new_id(), "kind": text}),
            422, "invalid_request")
    refused(api, lambda: admin.post("/v1/fees", json={
        "charge_id": new_id(), "account_id": source, "service_type": text}),
            422, "unknown_service_type")
    refused(api, lambda: admin.post(f"/v1/accounts/{source}/wallets", json={"address": text}),
            422, "invalid_wallet_address")


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_in_paths_and_queries_are_refused(api, admin, text):
    account = funded_account(admin)
    quoted = quote(text, safe="")
    for path in (f"/v1/accounts/{quoted}/balance", f"/v1/transfers/{quoted}",
                 f"/v1/accounts/{quoted}/history", f"/v1/allowances/{account}/{quoted}"):
        refused(api, lambda p=path: admin.get(p), (404, 422), ("invalid_request", "not_found"))
    refused(api, lambda: admin.put(f"/v1/pricing/{quoted}", json={"token_cost": "1"}),
            (404, 422), ("unknown_service_type", "not_found"))
    for params in ({"cursor": text}, {"limit": text}, {"at": text}, {"min_position": text}):
        endpoint = "balance" if "at" in params else "history"
        refused(api, lambda q=params, e=endpoint: admin.get(f"/v1/accounts/{account}/{e}",
                                                            params=q),
                422, "invalid_request")
    refused(api, lambda: admin.get("/v1/audit/events", params={"aggregate_id": text}),
            422, "invalid_request")


@pytest.mark.parametrize("text", [t for t in INJECTIONS if t.isprintable()])
def test_injection_strings_in_free_text_are_stored_as_data(api, admin, text):
    """A reason or reward type is text: it is accepted (unless it holds control
    characters, refused above) and answered back exactly, never interpreted."""
    account = open_account(admin)
    answer = admin.post("/v1/rewards", json={"reward_id": new_id(), "account_id": account,
                                             "reward_type": text, "amount": "1"})
    assert answer.status_code == 201, answer.text
    source = funded_account(admin)
    moved = admin.post("/v1/transfers", json={"transfer_id": new_id(), "from": source,
                                              "to": account, "amount": "1", "reason": text})
    assert moved.status_code == 201, moved.text
    view = admin.get(f"/v1/transfers/{moved.json()['transfer_id']}",
                     params={"min_position": moved.json()["position"]})
    assert view.status_code == 200 and view.json()["reason"] == text
    balance = admin.get(f"/v1/accounts/{account}/balance",
                        params={"min_position": moved.json()["position"]})
    assert balance.json()["balance"] == "2"


# --- ids that collide across command kinds --------------------------------------

COMMANDS: dict[str, Callable[[httpx.Client, str, str, str], httpx.Response]] = {
    "transfer": lambda c, i, s, d: c.post("/v1/transfers", json={
        "transfer_id": i, "from": s, "to": d, "amount": "1", "reason": ""}),
    "fee": lambda c, i, s, d: c.post("/v1/fees", json={
        "charge_id": i, "account_id": s, "service_type": "search"}),
    "hold": lambda c, i, s, d: c.post("/v1/holds", json={
        "hold_id": i, "account_id": s, "amount": "1"}),
    "reward": lambda c, i, s, d: c.post("/v1/rewards", json={
        "reward_id": i, "account_id": d, "reward_type": "r", "amount": "1"}),
    "mint": lambda c, i, s, d: c.post("/v1/mint", json={
        "transfer_id": i, "to": d, "amount": "1"}),
    "burn": lambda c, i, s, d: c.post("/v1/burn", json={
        "transfer_id": i, "from": s, "amount": "1"}),
    "account": lambda c, i, s, d: c.post("/v1/accounts", json={"account_id": i, "kind": "user"}),
}


@pytest.mark.parametrize("first", sorted(COMMANDS))
def test_an_id_is_one_namespace_across_command_kinds(api, admin, first):
    """Transfers, fees, holds, rewards, mints, burns, reversals and accounts
    share one id space (each is an aggregate keyed by the id): reusing an id
    for another kind of command is idempotency_conflict, as reusing it for
    another request of the same kind is."""
    source, destination = funded_account(admin), open_account(admin)
    for second in sorted(COMMANDS):
        if second == first:
            continue
        shared = new_id()
        assert COMMANDS[first](admin, shared, source, destination).status_code == 201
        refused(api, lambda s=second, i=shared: COMMANDS[s](admin, i, source, destination),
                409, "idempotency_conflict")


def test_a_reversal_id_already_used_by_another_kind_is_a_conflict(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    original = COMMANDS["transfer"](admin, new_id(), source, destination).json()["transfer_id"]
    for kind in sorted(COMMANDS):
        used = new_id()
        assert COMMANDS[kind](admin, used, source, destination).status_code == 201
        refused(api, lambda i=used: admin.post(f"/v1/transfers/{original}/reverse",
                                               json={"reversal_id": i, "reason": ""}),
                409, "idempotency_conflict")


def test_commands_on_an_id_of_another_kind_find_nothing(api, admin):
    source, destination = funded_account(admin), open_account(admin)
    transfer = COMMANDS["transfer"](admin, new_id(), source, destination).json()["transfer_id"]
    refused(api, lambda: admin.post(f"/v1/holds/{transfer}/capture", json={}), 404,
            "hold_not_found")
    refused(api, lambda: admin.post(f"/v1/holds/{transfer}/void"), 404, "hold_not_found")
    refused(api, lambda: admin.post(f"/v1/transfers/{source}/reverse",
                                    json={"reversal_id": new_id(), "reason": ""}),
            404, "transfer_not_found")
    refused(api, lambda: admin.post(f"/v1/accounts/{transfer}/freeze"), 404,
            "account_not_found")


# --- amounts at and over the limits ---------------------------------------------


@pytest.mark.parametrize("amount", [
    "0.000000001", "1.123456789", "0", "0.00000000", "-1", "-0.00000001", "1e3", "1E-8",
    "1e999999999", "9" * 33, "1000000000.00000001", "NaN", "-Infinity", "0x10", "1_0",
    " 1", "1 ", "+1", "01", ".5", "1.", "", "\u0661", "\uff11",
])
def test_amounts_outside_the_rules_are_invalid_amount(api, admin, amount):
    source, destination = funded_account(admin), open_account(admin)
    body = {"transfer_id": new_id(), "from": source, "to": destination, "amount": amount,
            "reason": ""}
    refused(api, lambda: admin.post("/v1/transfers", json=body), 422, "invalid_amount")
    if amount not in ("0", "0.00000000"):  # a zero allowance revokes
        refused(api, lambda: admin.put(f"/v1/allowances/{source}/{destination}",
                                       json={"amount": amount}), 422, "invalid_amount")


def test_amounts_at_the_limits_are_taken_exactly(api, admin):
    source, destination = funded_account(admin, "1000000000"), open_account(admin)
    for amount, expected in (("0.00000001", "0.00000001"), ("12.34567890", "12.3456789"),
                             ("1000000", "1000000")):
        body = {"transfer_id": new_id(), "from": source, "to": destination,
                "amount": amount, "reason": ""}
        answer = admin.post("/v1/transfers", json=body)
        assert answer.status_code == 201 and answer.json()["amount"] == expected, answer.text
    available = admin.get(f"/v1/accounts/{source}/balance",
                          params={"min_position": answer.json()["position"]}).json()
    everything = {"transfer_id": new_id(), "from": source, "to": destination,
                  "amount": available["available"], "reason": "all of it"}
    assert admin.post("/v1/transfers", json=everything).status_code == 201
    one_more = {**everything, "transfer_id": new_id(), "amount": "0.00000001"}
    refused(api, lambda: admin.post("/v1/transfers", json=one_more), 402,
            "insufficient_balance")


def test_minting_past_the_supply_cap_is_refused(make_settings):
    server = ThreadServer(make_settings("sqlite")).start()
    try:
        with server.client() as admin:
            account = open_account(admin)
            for _ in range(9):  # 1e9 at genesis + 9 * 1e9 = the 1e10 DEAL cap
                minted = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account,
                                                      "amount": "1000000000"})
                assert minted.status_code == 201, minted.text
            refused(server, lambda: admin.post("/v1/mint", json={
                "transfer_id": new_id(), "to": account, "amount": "0.00000001"}),
                    422, "supply_limit_exceeded")
            assert admin.get("/v1/system").json()["supply"] == "10000000000"
    finally:
        server.stop()


# --- times far in the past and the future ---------------------------------------


@pytest.mark.parametrize("moment", ["10000-01-01T00:00:00Z", "-1", "1700000000",
                                    "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z",
                                    "2026-01-01T00:00:00", "yesterday", "nan"])
def test_times_that_are_not_rfc3339_with_an_offset_are_refused(api, admin, moment):
    account = funded_account(admin)
    if not moment.isdigit():  # `at` reads digits as a log position
        refused(api, lambda: admin.get(f"/v1/accounts/{account}/balance",
                                       params={"at": moment}), 422, "invalid_request")
    refused(api, lambda: admin.post("/v1/audit/replay", json={"until": moment}),
            422, "invalid_request")
    refused(api, lambda: admin.put("/v1/pricing/goal", json={
        "token_cost": "1", "valid_from": moment}), 422, "invalid_request")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                                    "9999-12-31T23:59:59Z", "2020-01-01T00:00:00+14:00"])
def test_times_far_in_the_past_or_future_answer_without_error(api, admin, moment):
    account = funded_account(admin)
    answer = admin.get(f"/v1/accounts/{account}/balance",
                       params={"at": moment, "min_position": log_position(api)})
    if moment.startswith("9999"):
        assert answer.status_code == 200 and answer.json()["balance"] == "100", answer.text
    else:  # the account did not exist yet
        assert_error(answer, 404, "account_not_found")
    assert admin.post("/v1/audit/replay", json={"until": moment}).status_code == 200


@pytest.mark.parametrize("expires_in_s", [0, -1, 2_592_001, 2**63, 2**64, 10**30])
def test_hold_expiry_outside_one_second_to_thirty_days_is_refused(api, admin, expires_in_s):
    account = funded_account(admin)
    refused(api, lambda: admin.post("/v1/holds", json={
        "hold_id": new_id(), "account_id": account, "amount": "1",
        "expires_in_s": expires_in_s}), 422, "invalid_request")


@pytest.mark.parametrize("expires_in_s", [1.5, "10", True, [], {}])
def test_hold_expiry_of_the_wrong_type_is_bad_request(api, admin, expires_in_s):
    account = funded_account(admin)
    refused(api, lambda: admin.post("/v1/holds", json={
        "hold_id": new_id(), "account_id": account, "amount": "1",
        "expires_in_s": expires_in_s}), (400, 422), ("bad_request", "invalid_request"))


@pytest.mark.parametrize("position", [2**63, 10**30])
def test_log_positions_past_int64_are_invalid_not_a_crash(api, admin, position):
    account = funded_account(admin)
    refused(api, lambda: admin.get(f"/v1/accounts/{account}/balance",
                                   params={"min_position": position}), 422, "invalid_request")
    refused(api, lambda: admin.get("/v1/audit/events", params={"after_position": position}),
            422, "invalid_request")
    refused(api, lambda: admin.post("/v1/audit/replay", json={"until_position": position}),
            422, "invalid_request")
    refused(api, lambda: admin.get(f"/v1/accounts/{account}/balance",
                                   params={"at": str(position)}), 422, "invalid_request")


def test_json_with_a_body_of_the_wrong_shape_is_bad_request(api, admin):
    for text in ("[]", "null", "1", '"text"', "{", '{"a": 1,}', "{'a': 1}"):
        refused(api, raw_post(admin, "/v1/transfers", text), 400, "bad_request")
    for text in ('{"transfers": null}', '{"transfers": {}}', '{"transfers": "x"}'):
        refused(api, raw_post(admin, "/v1/transfers/batch", text), 400, "bad_request")
