"""GET /v1/reconciliations/deposits through a real HTTP connection, on
SQLite and on PostgreSQL: keyset pages of ``limit`` findings, oldest first,
``next_cursor`` asking for the next until the last, so a list longer than
one page (it used to stop at 1,000) is read in full, each finding once; a
cursor of another listing is refused."""

from __future__ import annotations

from uuid import UUID

from solders.signature import Signature

from application import commands as c
from application.authority import INTERNAL
from domain.reconciliation import UNASSIGNED_DEPOSIT
from domain.system import DEPOSIT_FINDINGS_RUN_ID, deposit_finding_id
from tests.interface.helpers import assert_error, funded_account, open_account, transfer_body

DEPOSITS = "/v1/reconciliations/deposits"


def record_unassigned_deposits(api, account: str, count: int,
                               sender: str | None = None) -> list[UUID]:
    """What the deposit scan records for strangers' deposits into ``account``
    (one command, as a scan of several does), each sent by the wallet
    ``sender`` when given; their finding ids in order."""
    specs = []
    for index in range(count):
        signature = str(Signature.new_unique())
        specs.append(c.FindingSpec(
            finding_id=deposit_finding_id(signature, UUID(account)), kind=UNASSIGNED_DEPOSIT,
            account_id=UUID(account), signature=signature, actual=(index + 1) * 10**6,
            detail="not credited: a stranger", source=str(Signature.new_unique())[:44],
            source_owner=sender, slot=index + 1))
    writer = api.service.writer
    writer.execute(c.StartReconciliation(DEPOSIT_FINDINGS_RUN_ID), authority=INTERNAL)
    writer.execute(c.RecordFindings(DEPOSIT_FINDINGS_RUN_ID, tuple(specs)), authority=INTERNAL)
    return [spec.finding_id for spec in specs]


def test_the_deposits_list_pages_past_its_page_size(api, admin):
    account = open_account(admin)
    recorded = record_unassigned_deposits(api, account, 5)

    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({} if cursor is None else {"cursor": cursor})
        response = admin.get(DEPOSITS, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break

    listed = [UUID(item["finding_id"]) for page in pages for item in page["items"]]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert listed == recorded  # oldest first, each once
    assert [item["actual"] for item in pages[1]["items"]] == ["0.03", "0.04"]
    whole = admin.get(DEPOSITS).json()  # the default page holds all five
    assert [UUID(item["finding_id"]) for item in whole["items"]] == recorded
    assert (whole["next_cursor"], whole["has_more"]) == (None, False)


def test_a_cursor_of_another_listing_is_refused(api, admin):
    account, other = funded_account(admin, "10"), open_account(admin)
    moved = admin.post("/v1/transfers", json=transfer_body(account, other))
    assert moved.status_code == 201, moved.text
    history = admin.get(f"/v1/accounts/{account}/history",
                        params={"limit": 1, "min_position": moved.json()["position"]}).json()
    assert history["next_cursor"] is not None

    refused = admin.get(DEPOSITS, params={"cursor": history["next_cursor"]})

    assert "history" in assert_error(refused, 422, "invalid_request")["message"]
    assert_error(admin.get(DEPOSITS, params={"cursor": "not-a-cursor"}), 422, "invalid_request")
