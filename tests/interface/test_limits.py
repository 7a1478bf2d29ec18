"""Every limit a client can reach, as README.md's "Limits" table states it:
a request just past each row's bound is refused with the row's status and
code, and the message names the row's bound. The table is read from the
README, so the README, the code and the message cannot drift apart; a row
without a request here, or a request without a row, fails too."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.interface.helpers import (
    assert_error,
    funded_account,
    new_id,
    open_account,
    transfer_body,
)

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADER = "| limit | bound | refusal |"


def readme_limits() -> dict[str, tuple[int, int, str]]:
    """limit -> (bound, status, code), from the README's table."""
    lines = README.read_text().splitlines()
    start = lines.index(TABLE_HEADER) + 2
    rows: dict[str, tuple[int, int, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        limit, bound, refusal = (cell.strip() for cell in line.strip("|").split("|"))
        number = re.search(r"[0-9][0-9,]*", bound)
        status, code = re.fullmatch(r"([0-9]{3}) `([a-z_]+)`", refusal).groups()  # type: ignore[union-attr]
        assert number is not None, line
        rows[limit] = (int(number.group().replace(",", "")), int(status), code)
    return rows


Probe = Callable[[httpx.Client, int], httpx.Response]


def _transfer(admin: httpx.Client, **fields) -> httpx.Response:
    body = transfer_body(funded_account(admin), open_account(admin), **fields)
    return admin.post("/v1/transfers", json=body)


def _past_the_supply(admin: httpx.Client, bound: int) -> httpx.Response:
    """Mint up to the cap, one base unit more, then burn it all back so the
    module's other tests keep a supply to mint from."""
    supply = int(admin.get("/v1/system").json()["supply"])
    account = open_account(admin)
    room, minted = bound - supply, []
    while room > 0:
        amount = min(room, 1_000_000_000)
        answer = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account,
                                              "amount": str(amount)})
        assert answer.status_code == 201, answer.text
        minted.append(amount)
        room -= amount
    refused = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account,
                                           "amount": "0.00000001"})
    for amount in minted:
        burnt = admin.post("/v1/burn", json={"transfer_id": new_id(), "from": account,
                                             "amount": str(amount)})
        assert burnt.status_code == 201, burnt.text
    return refused


def _past_the_price_rules(api) -> Probe:
    def probe(admin: httpx.Client, bound: int) -> httpx.Response:
        for index in range(bound):
            answer = admin.put("/v1/pricing/notification", json={
                "token_cost": "0.05", "valid_from": f"2000-01-01T00:00:{index % 60:02d}Z",
                "valid_to": f"{3000 + index}-01-01T00:00:00Z"})
            if answer.status_code != 200:
                return answer  # the rules of earlier runs count too
        # Past the bound with one more rule that ends (a rule without an end
        # would replace them all, and is taken).
        return admin.put("/v1/pricing/notification", json={
            "token_cost": "0.05", "valid_from": "2000-01-01T00:01:00Z",
            "valid_to": f"{3000 + bound}-01-01T00:00:00Z"})

    return probe


def probes(api) -> dict[str, Probe]:
    account = lambda admin: funded_account(admin)  # noqa: E731
    return {
        "a single amount (transfer, hold, capture, reward, mint, burn, allowance, price)":
            lambda admin, bound: _transfer(admin, amount=str(bound + 1)),
        "circulating supply (a mint)": _past_the_supply,
        "fractional digits of an amount":
            lambda admin, bound: _transfer(admin, amount="0." + "0" * bound + "1"),
        "characters of an amount":
            lambda admin, bound: _transfer(admin, amount="1." + "0" * (bound - 1)),
        "characters of a reason":
            lambda admin, bound: _transfer(admin, reason="r" * (bound + 1)),
        "characters of a reward type": lambda admin, bound: admin.post("/v1/rewards", json={
            "reward_id": new_id(), "account_id": open_account(admin),
            "reward_type": "t" * (bound + 1), "amount": "1"}),
        "keys of a movement's `metadata`": lambda admin, bound: _transfer(
            admin, metadata={f"k{n}": "v" for n in range(bound + 1)}),
        "characters of a `metadata` value":
            lambda admin, bound: _transfer(admin, metadata={"k": "v" * (bound + 1)}),
        "characters of an `external_ref`":
            lambda admin, bound: _transfer(admin, external_ref="r" * (bound + 1)),
        "characters of a webhook's `url`": lambda admin, bound: admin.post("/v1/webhooks", json={
            "url": "https://example.com/" + "u" * (bound - 19)}),
        "characters of a webhook's `secret`": lambda admin, bound: admin.post(
            "/v1/webhooks", json={"url": "https://example.com/hook", "secret": "s" * (bound + 1)}),
        "items in a batch": lambda admin, bound: admin.post("/v1/transfers/batch", json={
            "transfers": [transfer_body(new_id(), new_id()) for _ in range(bound + 1)]}),
        "hold expiry, `expires_in_s` (seconds)": lambda admin, bound: admin.post(
            "/v1/holds", json={"hold_id": new_id(), "account_id": account(admin),
                               "amount": "1", "expires_in_s": bound + 1}),
        "page size, `limit`": lambda admin, bound: admin.get(
            f"/v1/accounts/{account(admin)}/history", params={"limit": bound + 1}),
        "characters of a cursor": lambda admin, bound: admin.get(
            f"/v1/accounts/{account(admin)}/history", params={"cursor": "A" * (bound + 1)}),
        "characters of a wallet address": lambda admin, bound: admin.post(
            f"/v1/accounts/{open_account(admin)}/wallets", json={"address": "1" * (bound + 1)}),
        "a log position (`min_position`, `at`, `until_position`, `after_position`)":
            lambda admin, bound: admin.get(f"/v1/accounts/{account(admin)}/balance",
                                           params={"min_position": bound + 1}),
        "characters of a time": lambda admin, bound: admin.post(
            "/v1/audit/replay", json={"until": "2026-01-01T00:00:00." + "0" * bound + "Z"}),
        "price rules per service type": _past_the_price_rules(api),
        "request body, `DEALS_MAX_BODY_BYTES` (bytes)": lambda admin, bound: admin.post(
            "/v1/transfers", content=b" " * (bound + 1),
            headers={"content-type": "application/json"}),
    }


def test_every_row_of_the_readme_table_has_a_probe_and_back(api):
    assert set(readme_limits()) == set(probes(api))


@pytest.mark.parametrize("limit", list(readme_limits()))
def test_a_request_past_each_limit_is_refused_as_the_readme_says(api, limit):
    bound, status, code = readme_limits()[limit]
    with api.client() as admin:
        error = assert_error(probes(api)[limit](admin, bound), status, code)
    digits = error["message"].replace(",", "")
    assert re.search(rf"(?<![0-9]){bound}(?![0-9])", digits), (limit, error["message"])


def test_the_two_amount_limits_are_named_for_what_they_limit(api):
    """A single amount past 1e9 DEAL was refused as "the supply" (which is
    capped at 1e10): each limit's message names its own."""
    rows = readme_limits()
    with api.client() as admin:
        single = assert_error(_transfer(admin, amount="1000000000.00000001"), 422,
                              "invalid_amount")["message"]
        supply = assert_error(_past_the_supply(admin, rows["circulating supply (a mint)"][0]),
                              422, "supply_limit_exceeded")["message"]
    assert "single-amount limit of 1,000,000,000 DEAL" in single and "supply" not in single
    assert "circulating supply past its limit of 10,000,000,000 DEAL" in supply
