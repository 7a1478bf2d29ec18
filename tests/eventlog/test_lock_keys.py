"""Lock keys are stored contracts: an old and a new process must compute the
same key for the same lock, or both could hold "the" lock during an upgrade
(two settlers, two projectors, DDL at once). The values below were computed
by the code of the golden ledger's day; they never change."""

from __future__ import annotations

import pytest

from application.eventlog.locks import (
    HASHTEXT_DDL_LOCK_SQL,
    advisory_lock_key,
    settlement_ddl_lock_name,
    webhooks_ddl_lock_name,
)
from application.write.event_store import LedgerApplication
from interface.webhooks.wiring import delivery_lock
from interface.wiring.settler import lease_for
from projections.read_model_store import PostgresReadModelStore

PINNED = {
    "deals-ledger:public:read_models": -1941694978879265512,  # the projector
    "deals-ledger:settlement:public": -5634927997057404092,  # the settler's lease
    "deals-ledger:webhooks:public": 8192510026110737314,  # the webhook deliverer
    "deals-ledger:public:read-model-ddl": -8583594171932188598,
    "deals-ledger:public:event-store-ddl": 7326074858776280054,
    "deals-ledger:public:dealsledger_events:writer-turn": -1770347901985306483,
}


@pytest.mark.parametrize(("name", "key"), PINNED.items())
def test_a_lock_name_hashes_to_the_key_it_always_had(name, key):
    assert advisory_lock_key(name) == key


def test_each_holder_lock_is_named_as_it_always_was(postgres):
    schema = postgres.env["POSTGRES_SCHEMA"]
    app = LedgerApplication(postgres.env)
    store = PostgresReadModelStore(postgres.env)
    try:
        assert store.projection_lock().key == advisory_lock_key(f"deals-ledger:{schema}:read_models")
        assert lease_for(app.recorder).key == advisory_lock_key(f"deals-ledger:settlement:{schema}")
        assert delivery_lock(app.recorder).key == advisory_lock_key(f"deals-ledger:webhooks:{schema}")
        assert app.recorder.events_table_name == "dealsledger_events"
    finally:
        store.close()
        app.close()


@pytest.mark.parametrize(("lock_name", "key"), [
    (settlement_ddl_lock_name("public"), 1479646400),
    (webhooks_ddl_lock_name("public"), -231390042),
])
def test_the_stores_ddl_locks_keep_their_hashtext_keys(postgres, lock_name, key):
    """The keys PostgreSQL computes itself (``hashtext``), pinned too."""
    import psycopg

    assert HASHTEXT_DDL_LOCK_SQL == "SELECT pg_advisory_xact_lock(hashtext(?))"
    with psycopg.connect(postgres.settings.database_url) as conn:
        assert conn.execute("SELECT hashtext(%s)", (lock_name,)).fetchone() == (key,)
