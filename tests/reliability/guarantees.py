"""The promises checked after every fault, read from the log and the API.

- Every acknowledged command is in the log exactly once: one debit and one
  credit under its id, and no movement anywhere has a leg twice.
- Nothing refused or unanswered is half applied: every movement in the log
  has both legs; a refused id has no aggregate at all.
- Invariants: all balances sum to zero with issuance; no available balance
  below zero but issuance's.
- Audit replay of the whole log matches the read models; every movement is
  settled on chain once and reconciliation finds nothing.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

import httpx

from application.write.event_store import LedgerApplication
from domain.account import Account
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from tests.reliability.load import Ledgerbook, LoadRun, retry_unknown
from tests.support.http import wait_until, wait_while_progressing

PAGE = 1000
SETTLE_STALL_S_MAX = 120.0
LEGS = ("Debited", "Credited")


def legs_by_movement(app: LedgerApplication) -> Counter[tuple[UUID, str]]:
    """(movement id, "Debited" | "Credited") -> how often it is in the whole log."""
    legs: Counter[tuple[UUID, str]] = Counter()
    position = 0
    while page := app.recorder.select_notifications(start=position + 1, limit=PAGE):
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, Account.Debited | Account.Credited):
                legs[(event.transfer_id, type(event).__name__)] += 1
        position = page[-1].id
    return legs


def assert_exactly_once(env: dict[str, str], book: Ledgerbook) -> None:
    assert not book.unknown, "retry the unknown commands before checking"
    app = LedgerApplication(env)
    try:
        legs = legs_by_movement(app)
        for command_id in book.acknowledged:
            for leg in LEGS:
                assert legs[(UUID(command_id), leg)] == 1, (command_id, leg)
        for command_id in book.refused:
            assert app.load(UUID(command_id)) is None, command_id
        assert all(count == 1 for count in legs.values()), "a leg recorded twice"
        movements = {movement for movement, _ in legs}
        assert all(legs[(m, "Debited")] == legs[(m, "Credited")] == 1 for m in movements), (
            "a movement with one leg")
    finally:
        app.close()


def assert_invariants(env: dict[str, str], accounts: list[str]) -> None:
    """Conservation and no overdraft, on the write side as stored."""
    app = LedgerApplication(env)
    try:
        stored = [app.account(UUID(a)) for a in accounts]
        stored += [app.account(a) for a in (TREASURY_ID, REWARDS_ID, ISSUANCE_ID)]
    finally:
        app.close()
    assert sum(a.balance for a in stored) == 0
    assert all(a.available >= 0 for a in stored if a.id != ISSUANCE_ID)


def assert_audit_clean(admin: httpx.Client, position: int) -> None:
    """Once the read models reach ``position``, a replay of the whole log
    matches them (balances, history, cache, conservation, hash chain)."""
    wait_until(lambda: _read_models_reached(admin, position), 60, f"read models at {position}",
               interval_s=0.1)
    report = admin.post("/v1/audit/replay", json={})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["supply_ok"] and body["mismatches"] == [], body
    assert body["first_tampered_position"] is None and body["last_position"] >= position, body


def _read_models_reached(admin: httpx.Client, position: int) -> bool:
    answer = admin.get(f"/v1/accounts/{TREASURY_ID}/balance", params={"min_position": position})
    return answer.status_code == 200


def assert_settled_and_reconciled(env: dict[str, str], book: Ledgerbook,
                                  admin: httpx.Client) -> None:
    """Every acknowledged movement settles once on chain, and a full
    reconciliation of chain against log finds nothing."""
    app = LedgerApplication(env)
    pending = {UUID(command_id) for command_id in book.acknowledged}
    try:
        def unsettled() -> int:
            pending.difference_update(
                [t for t in pending if app.transfer(t).status == "settled"])
            return len(pending)

        wait_while_progressing(unsettled, SETTLE_STALL_S_MAX,
                               "every acknowledged movement settled")
    finally:
        app.close()
    # a fresh connection: the settling wait can outlast the server's keep-alive
    # idle timeout, and a request sent as the server closes the idle connection
    # is lost (HTTP's own race; a client retries on a new connection)
    with httpx.Client(base_url=admin.base_url, headers=admin.headers,
                      timeout=admin.timeout) as fresh:
        report = fresh.post("/v1/reconciliations", json={"full": True})
    assert report.status_code == 201, report.text
    body = report.json()
    assert body["mismatch_count"] == 0 and body["unmatched_signature_count"] == 0, body


def assert_guarantees(env: dict[str, str], book: Ledgerbook, accounts: list[str],
                      admin: httpx.Client, *, settlement: bool = True) -> None:
    assert_exactly_once(env, book)
    assert_invariants(env, accounts)
    assert_audit_clean(admin, book.last_position)
    if settlement:
        assert_settled_and_reconciled(env, book, admin)


def recover_then_assert_guarantees(env: dict[str, str], run: LoadRun, admin: httpx.Client,
                                   url: str) -> None:
    """After a store fault: wait for /ready, send every unknown command
    again, then check every guarantee."""
    wait_until(lambda: admin.get("/ready").status_code == 200, 60, "/ready")
    retry_unknown(run.book, url)
    assert_guarantees(env, run.book, run.accounts, admin)
