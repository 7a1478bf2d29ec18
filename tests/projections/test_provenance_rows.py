"""Who asked, in the read models: the history and the transactions carry
each movement's ``requested_by`` and ``request_id`` from its events, the
ledger's own compensation names the settler, and a replay of the log
rebuilds them exactly. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from uuid import uuid4

from application import commands as c
from application.authority import SETTLER, Authority
from application.handlers.settlement_steps import compensation_id
from domain.provenance import Provenance
from domain.system import TREASURY_ID

ADMIN = Authority("key 'ops'", admin=True, provenance=Provenance("ops", "req-mint"))
TX = base64.b64encode(b"signed transaction bytes").decode()


def test_a_compensation_is_the_settlers_in_history_and_transactions(ledger, read_side):
    alice, moved = ledger.open_account(), uuid4()
    ledger.writer.execute(c.Mint(uuid4(), alice, 5), authority=ADMIN)
    ledger.writer.execute(c.TransferFunds(moved, TREASURY_ID, alice, 3), authority=ADMIN)
    ledger.writer.execute(c.RecordSubmission("sig-1", 300, TX, (moved,)), authority=SETTLER)
    ledger.writer.execute(c.MarkSettlementFailed("sig-1", "refused", (moved,)), authority=SETTLER)

    read_side.projector.catch_up()
    queries = read_side.queries
    history = [(h.type, h.requested_by, h.request_id) for h in queries.history(alice).items]
    reversal = queries.transfer(compensation_id(moved))

    assert history == [("mint", "ops", "req-mint"), ("transfer", "ops", "req-mint"),
                       ("reversal", "system:settler", None)]
    assert (reversal.kind, reversal.requested_by, reversal.request_id) == (
        "reversal", "system:settler", None)
    assert queries.audit_replay().mismatches == []
