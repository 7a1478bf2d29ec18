"""The read-model store: processes starting together create its tables
without tripping over each other."""

from __future__ import annotations

import threading

from projections.read_model_store import (
    ADDED_COLUMNS,
    READ_MODEL_SCHEMA_VERSION,
    SCHEMA_VERSION_META,
    open_store,
)
from projections.rows import BalanceRow


def test_stores_opened_at_the_same_moment_all_come_up(store):
    errors: list[str] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            open_store(store.env).close()
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    opened = open_store(store.env)
    try:
        assert opened.position() == 0
    finally:
        opened.close()


def test_read_models_of_another_schema_version_are_rebuilt_from_the_log(ledger, read_side, store):
    """An upgrade that changes what rows mean empties them at start, and the
    projector rebuilds them; the same version is left alone."""
    ledger.open_account(funded=500)
    read_side.projector.catch_up()
    projected = read_side.store.position()
    assert projected > 0
    read_side.projector.stop()  # its own polling must not refill what the test inspects

    reopened = open_store(store.env)
    assert reopened.position() == projected  # same version: kept
    reopened.set_meta(SCHEMA_VERSION_META, READ_MODEL_SCHEMA_VERSION - 1)
    reopened.close()

    rebuilt = open_store(store.env)
    try:
        assert rebuilt.position() == 0
        assert rebuilt.meta(SCHEMA_VERSION_META) == READ_MODEL_SCHEMA_VERSION
        with rebuilt.read() as cursor:
            assert list(rebuilt.all_rows(cursor, BalanceRow)) == []
    finally:
        rebuilt.close()
    assert read_side.projector.catch_up() == projected
    assert read_side.queries.audit_replay().mismatches == []


def test_tables_of_an_earlier_version_get_the_columns_added_since(ledger, read_side, store):
    """``CREATE TABLE IF NOT EXISTS`` keeps an old table as it was: the
    upgrade adds the columns (who asked) before the rebuild fills them."""
    ledger.open_account(funded=500)
    projected = read_side.projector.catch_up()
    read_side.projector.stop()
    older = open_store(store.env)
    with older._cursor(commit=True) as cursor:
        # an older table has no index on the columns added since
        cursor.execute(older.sql("DROP INDEX IF EXISTS transactions_by_external_ref"))
        for table, added in ADDED_COLUMNS.items():
            for column in added:
                cursor.execute(older.sql(f"ALTER TABLE {{{table}}} DROP COLUMN {column}"))
    older.set_meta(SCHEMA_VERSION_META, 2)
    older.close()

    upgraded = open_store(store.env)
    try:
        assert upgraded.meta(SCHEMA_VERSION_META) == READ_MODEL_SCHEMA_VERSION
        with upgraded._cursor(commit=False) as cursor:
            for table, added in ADDED_COLUMNS.items():
                assert set(added) <= upgraded._column_names(cursor, table)
    finally:
        upgraded.close()
    assert read_side.projector.catch_up() == projected
    assert read_side.queries.audit_replay().mismatches == []
