"""A repeat answered by another process, after the first one died: two
``deals-ledger serve`` processes on one PostgreSQL schema and one Redis,
settling on the embedded chain. Commands of every kind go to the first
process; their movements settle (and a hold is captured) for real; the
first process is SIGKILLed; the same requests sent to the second answer
exactly the first answers, byte for byte, with status 200 and
``Idempotent-Replayed: true``. The answers come from what the commands
committed, never from a process's memory."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from interface.http.idempotency import REPLAYED_HEADER
from tests.interface.helpers import funded_account, new_id, open_account, transfer_body
from tests.reliability.conftest import serve_env
from tests.support.http import ADMIN, ServeProcess, wait_until

pytestmark = pytest.mark.slow  # real processes: see pyproject's markers

SETTLE_TIMEOUT_S = 120


def _commands(admin: httpx.Client) -> list[tuple[str, str, dict | None]]:
    """One request of each kind that settles or changes later (method, path, body)."""
    source, destination, spender = (funded_account(admin, "100"), open_account(admin),
                                    open_account(admin))
    assert admin.put(f"/v1/allowances/{source}/{spender}", json={"amount": "5"}).status_code == 200
    hold_id = new_id()
    return [
        ("POST", "/v1/accounts", {"account_id": new_id(), "kind": "user"}),
        ("POST", "/v1/transfers", transfer_body(source, destination, "2")),
        ("POST", "/v1/transfers/from", {**transfer_body(source, destination, "1"),
                                        "spender": spender}),
        ("POST", "/v1/fees", {"charge_id": new_id(), "account_id": source,
                              "service_type": "search"}),
        ("POST", "/v1/rewards", {"reward_id": new_id(), "account_id": destination,
                                 "reward_type": "referral", "amount": "1"}),
        ("POST", "/v1/mint", {"transfer_id": new_id(), "to": destination, "amount": "3"}),
        ("POST", "/v1/burn", {"transfer_id": new_id(), "from": source, "amount": "1"}),
        ("POST", "/v1/holds", {"hold_id": hold_id, "account_id": source, "amount": "4"}),
        ("POST", f"/v1/holds/{hold_id}/capture", {"amount": "3"}),
        ("POST", "/v1/transfers/batch", {"transfers": [transfer_body(source, destination, "1"),
                                                       transfer_body(source, destination, "1")]}),
        ("PUT", f"/v1/allowances/{source}/{spender}", {"amount": "7"}),
        ("POST", f"/v1/accounts/{spender}/freeze", None),
    ]


def _movement_ids(answers: list[httpx.Response]) -> list[str]:
    ids = []
    for answer in answers:
        body = answer.json()
        ids += [item["transfer_id"] for item in body.get("results", [])]
        ids += [body[key] for key in ("transfer_id", "charge_id", "reward_id", "hold_id")
                if key in body]
    return ids


def _all_settled(client: httpx.Client, ids: list[str]) -> bool:
    return all(client.get(f"/v1/transfers/{i}").json()["status"] == "settled" for i in ids)


def test_a_second_process_answers_repeats_exactly_after_the_first_died(pg_service, tmp_path: Path):
    env = serve_env(pg_service)
    first_server = ServeProcess(tmp_path / "api-1", env)
    second_server = None
    try:
        second_server = ServeProcess(tmp_path / "api-2", env)
        with first_server.client(ADMIN) as admin:
            requests = _commands(admin)
            answers = [admin.request(method, path, json=body) for method, path, body in requests]
        assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
        with second_server.client(ADMIN) as other:
            wait_until(lambda: _all_settled(other, _movement_ids(answers)), SETTLE_TIMEOUT_S,
                       "every movement to settle")
            first_server.kill()
            for (method, path, body), first in zip(requests, answers, strict=True):
                repeat = other.request(method, path, json=body)
                assert repeat.status_code == 200, (path, repeat.text)
                assert repeat.headers.get(REPLAYED_HEADER) == "true", path
                assert repeat.content == first.content, path
    finally:
        first_server.kill()
        if second_server is not None:
            assert second_server.terminate() == 0
