"""Small steps the API tests share: open and fund accounts over HTTP."""

from __future__ import annotations

from uuid import uuid4

import httpx


def new_id() -> str:
    return str(uuid4())


def open_account(client: httpx.Client) -> str:
    account_id = new_id()
    response = client.post("/v1/accounts", json={"account_id": account_id, "kind": "user"})
    assert response.status_code == 201, response.text
    return account_id


def fund(admin: httpx.Client, account_id: str, amount: str) -> None:
    response = admin.post("/v1/mint", json={"transfer_id": new_id(), "to": account_id,
                                            "amount": amount})
    assert response.status_code == 201, response.text


def funded_account(admin: httpx.Client, amount: str = "100") -> str:
    account_id = open_account(admin)
    fund(admin, account_id, amount)
    return account_id


def transfer_body(source: str, destination: str, amount: str = "1", **extra) -> dict:
    return {"transfer_id": new_id(), "from": source, "to": destination, "amount": amount,
            "reason": "test", **extra}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def log_position(server) -> int:
    return server.service.store_position()
