"""What callers read is the truth: every query route, read right after a
write, reflects it with no client cooperation (no ``min_position``), and
says which position its answer reflects; on SQLite and on PostgreSQL with
Redis, in one process and across two ``serve`` processes whose projections
are off (a separate ``deals-ledger project`` worker projects)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from solders.keypair import Keypair

from tests.interface.conftest import postgres_settings, sqlite_settings
from tests.interface.helpers import (
    assert_error,
    funded_account,
    new_id,
    open_account,
    transfer_body,
)
from tests.reliability.conftest import serve_env
from tests.reliability.processes import WorkerProcess
from tests.support.http import ADMIN, ServeProcess, ThreadServer


def _written(response: httpx.Response) -> int:
    assert response.status_code in (200, 201), response.text
    return response.json()["position"]


class Reads:
    """Reads through one client, each checked to reflect a write; it keeps
    the route templates it read, so a test can tell a route it missed."""

    def __init__(self, client: httpx.Client) -> None:
        self.client, self.routes = client, set()

    def __call__(self, route: str, written: int, path_args: dict | None = None,
                 **params) -> dict:
        self.routes.add(route)
        answer = self.client.get(route.format(**(path_args or {})), params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body.get("position", body.get("as_of_position")) >= written, body
        return body


def every_query_reads_its_write(writer: httpx.Client, reader: httpx.Client) -> set[str]:
    """For each query route: a write through ``writer``, then at once a read
    through ``reader``, which must show it; the routes read."""
    read = Reads(reader)
    source = funded_account(writer, "10")
    destination = open_account(writer)
    body = transfer_body(source, destination, "2.5", external_ref=f"order-{new_id()}")
    moved = _written(writer.post("/v1/transfers", json=body))
    ids = {"account_id": source}
    balance = read("/v1/accounts/{account_id}/balance", moved, ids)
    assert balance["balance"] == "7.5"
    account = read("/v1/accounts/{account_id}", moved, ids)
    assert account["balance"] == "7.5"
    history = read("/v1/accounts/{account_id}/history", moved, {"account_id": destination})
    assert [item["transfer_id"] for item in history["items"]] == [body["transfer_id"]]
    listed = read("/v1/accounts/{account_id}/transactions", moved, ids)
    assert body["transfer_id"] in [item["transfer_id"] for item in listed["items"]]
    transfer = read("/v1/transfers/{transfer_id}", moved, {"transfer_id": body["transfer_id"]})
    assert transfer["amount"] == "2.5"
    found = read("/v1/transfers", moved, external_ref=body["external_ref"])
    assert [item["transfer_id"] for item in found["items"]] == [body["transfer_id"]]
    opened = new_id()
    opening = _written(writer.post("/v1/accounts", json={"account_id": opened}))
    accounts = read("/v1/accounts", opening, kind="user", limit=1000)  # page past earlier ones
    while opened not in [a["account_id"] for a in accounts["items"]] and accounts["next_cursor"]:
        accounts = read("/v1/accounts", opening, kind="user", limit=1000,
                        cursor=accounts["next_cursor"])
    assert opened in [a["account_id"] for a in accounts["items"]]
    address = str(Keypair().pubkey())
    connected = _written(writer.post(f"/v1/accounts/{source}/wallets", json={"address": address}))
    wallets = read("/v1/accounts/{account_id}/wallets", connected, ids)
    assert [w["address"] for w in wallets["wallets"]] == [address]
    allowed = _written(writer.put(f"/v1/allowances/{source}/{destination}",
                                  json={"amount": "1.25"}))
    allowance = read("/v1/allowances/{owner}/{spender}", allowed,
                     {"owner": source, "spender": destination})
    assert allowance["amount"] == "1.25"
    cost = f"0.{len(new_id()) % 7 + 1}"
    priced = _written(writer.put("/v1/pricing/analysis", json={"token_cost": cost}))
    pricing = read("/v1/pricing", priced)
    analysis = next(s for s in pricing["services"] if s["service_type"] == "analysis")
    assert analysis["token_cost"] == cost
    one = read("/v1/pricing/{service_type}", priced, {"service_type": "analysis"})
    assert one["token_cost"] == cost
    supply_before = reader.get("/v1/system").json()["supply"]
    minted = _written(writer.post("/v1/mint", json={"transfer_id": new_id(), "to": source,
                                                    "amount": "3"}))
    supply = read("/v1/system", minted)["supply"]
    assert Decimal(supply) == Decimal(supply_before) + 3
    events = read("/v1/audit/events", minted, aggregate_id=source)
    assert events["items"][-1]["position"] <= minted
    assert events["items"][-1]["state"]["amount"] == 300_000_000
    return read.routes


def consistent_query_routes(client: httpx.Client) -> set[str]:
    """The GET routes the OpenAPI document gives a ``consistency`` parameter."""
    paths = client.get("/openapi.json").json()["paths"]
    return {path for path, operations in paths.items()
            if any(p["name"] == "consistency" for p in operations.get("get", {}).get("parameters", []))}


def test_every_query_reads_the_write_before_it_in_one_process(api):
    with api.client(ADMIN) as client:
        assert every_query_reads_its_write(client, client) == consistent_query_routes(client)


@pytest.fixture(params=["sqlite", "postgres"])
def serve_settings(request, tmp_path: Path):
    if request.param == "sqlite":
        yield sqlite_settings(tmp_path / "var")
        return
    database = request.getfixturevalue("postgres_database")
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    schema = database.new_schema()
    yield postgres_settings(tmp_path / "var", database, schema, url, prefix)
    database.drop_schema(schema)


@pytest.fixture
def two_api_processes(serve_settings, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """Two ``serve`` processes with projections and settlement off, and one
    ``project`` worker, on one store (and one Redis)."""
    env = serve_env(serve_settings) | {"DEALS_SETTLEMENT": "off"}
    api_env = env | {"DEALS_PROJECTIONS": "off"}
    processes: list = []
    try:
        processes += [ServeProcess(tmp_path / f"api-{n}", api_env) for n in range(2)]
        processes.append(WorkerProcess(tmp_path / "project", env, "project"))
        yield processes[:2]
        assert [p.terminate() for p in processes] == [0] * len(processes)
    finally:
        for process in processes:
            process.kill()


def test_every_query_reads_a_write_another_process_acknowledged(two_api_processes):
    first, second = two_api_processes
    with first.client(ADMIN) as writer, second.client(ADMIN) as reader:
        every_query_reads_its_write(writer, reader)
        every_query_reads_its_write(reader, writer)


def test_a_position_past_the_head_is_refused_at_once_naming_the_head(api):
    with api.client(ADMIN) as client:
        account = funded_account(client, "1")
        far = 2**63 - 1
        for path, params in (
            (f"/v1/accounts/{account}/balance", {"min_position": far}),
            (f"/v1/accounts/{account}/balance", {"at": str(10**17)}),
            (f"/v1/accounts/{account}/history", {"min_position": far}),
            (f"/v1/accounts/{account}/history", {"min_position": far, "consistency": "eventual"}),
            ("/v1/pricing", {"min_position": far}),
            ("/v1/system", {"min_position": far}),
            ("/v1/audit/events", {"after_position": far}),
            ("/v1/audit/events", {"min_position": far}),
            ("/v1/audit/events", {"min_position": far, "consistency": "eventual"}),
        ):
            answer = client.get(path, params=params)
            assert answer.status_code == 422, (path, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "position_past_head"
            head = client.get("/ready").json()["store_position"]  # nothing writes meanwhile
            assert f"past the log's head, {head}:" in error["message"], error
        replay = client.post("/v1/audit/replay", json={"until_position": far})
        assert replay.status_code == 422 and replay.json()["error"]["code"] == "position_past_head"
        replay = client.post("/v1/audit/replay", params={"min_position": far})
        assert replay.status_code == 422 and replay.json()["error"]["code"] == "position_past_head"


def test_the_audit_routes_take_consistency_like_every_query(api):
    with api.client(ADMIN) as client:
        funded_account(client, "1")
        for consistency in ("strong", "eventual"):
            listed = client.get("/v1/audit/events", params={"consistency": consistency})
            assert listed.status_code == 200, listed.text
        assert_error(client.get("/v1/audit/events", params={"consistency": "bogus"}),
                     422, "invalid_request")
        assert_error(client.post("/v1/audit/replay", params={"consistency": "bogus"}),
                     422, "invalid_request")
        both = {"until_position": 1, "until": "2026-01-01T00:00:00Z"}
        error = assert_error(client.post("/v1/audit/replay", json=both), 422, "invalid_request")
        assert "not both" in error["message"]


def test_consistency_takes_strong_or_eventual_and_nothing_else(api):
    with api.client(ADMIN) as client:
        account = funded_account(client, "4")
        for consistency in ("strong", "eventual"):
            answer = client.get(f"/v1/accounts/{account}/balance",
                                params={"consistency": consistency})
            assert answer.status_code == 200, answer.text
        refused = client.get(f"/v1/accounts/{account}/balance", params={"consistency": "fast"})
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "invalid_request"


def test_waiting_reads_hold_no_thread_and_do_not_delay_other_reads(make_settings):
    """Sixty reads wait for a projector that is not running; reads that need
    no wait (eventual, /health, /ready) all answer while those still wait, and
    the waiting ones answer right once the projector runs."""
    import concurrent.futures

    server = ThreadServer(make_settings("sqlite", projections_enabled=False)).start()
    try:
        server.service.queries.wait_s_max = 120.0  # a busy machine must not time them out
        with server.client(ADMIN) as client:
            server.service.read_side.projector.catch_up()
            account = funded_account(client, "5")  # acknowledged; the read models lag
            waiting_count = 60
            pool = concurrent.futures.ThreadPoolExecutor(waiting_count + 5)
            with httpx.Client(base_url=server.url, headers=client.headers, timeout=60,
                              limits=httpx.Limits(max_connections=waiting_count + 10)) as many:
                waiting = [pool.submit(many.get, f"/v1/accounts/{account}/balance")
                           for _ in range(waiting_count)]
                progress = server.service.read_side.progress
                wait_until_waiters(progress, waiting_count)
                quick = [many.get("/v1/pricing", params={"consistency": "eventual"})
                         for _ in range(5)]
                quick.append(many.get("/health"))
                assert [r.status_code for r in quick] == [200] * 6
                assert not any(future.done() for future in waiting)  # still waiting, in order
                server.service.read_side.start()  # the projector catches up
                answers = [future.result(60) for future in waiting]
            pool.shutdown()
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["balance"] for a in answers} == {"5"}
    finally:
        server.stop()


def wait_until_waiters(progress, count: int) -> None:
    from tests.support.http import wait_until

    wait_until(lambda: len(progress._waiters) >= count, 30, f"{count} waiting reads")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_read_the_read_models_cannot_reach_in_time_is_503_with_retry_after(
        make_settings, store):
    """No projector runs: a default read waits its bound, then answers 503
    ``unavailable`` with Retry-After (nothing is wrong with the request);
    an eventual read answers at once from the read models as they are."""
    server = ThreadServer(make_settings(store, projections_enabled=False)).start()
    try:
        server.service.queries.wait_s_max = 0.2
        with server.client(ADMIN) as client:
            server.service.read_side.projector.catch_up()
            account = funded_account(client, "5")  # acknowledged; the read models lag
            behind = client.get(f"/v1/accounts/{account}/balance")
            error = assert_error(behind, 503, "unavailable")
            assert "have not reached position" in error["message"], error
            assert behind.headers["Retry-After"].isdigit()
            eventual = client.get(f"/v1/accounts/{account}/balance",
                                  params={"consistency": "eventual"})
            assert_error(eventual, 404, "account_not_found")  # not projected yet
    finally:
        server.stop()
