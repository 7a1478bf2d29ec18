"""The golden ledger, written by an earlier version, still reads clean.

Stored names are contracts with data that already exists: event topics and
fields, snapshots, table and column names, the embedded chain's files. This
test opens the committed ledgers (``tests/golden/v1``, see its README) with
today's code, through the ``deals-ledger`` command as an operator would, and
checks that today's code replays them clean, rebuilds their read models,
settles the movements they left waiting and reconciles the chain, with every
balance as the manifest recorded it. It must pass after every commit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from interface.wiring.seal_keys import COMMIT_KEYS_FILE_NAME
from tests.support.stores import StoreConfig, sqlite_store

GOLDEN = Path(__file__).parent / "v1"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
KEY_FILE = "custody-keypair.json"
CLI_TIMEOUT_S = 300
FINDINGS_EXIT_STATUS = 4  # ``deals-ledger reconcile``: clean 0, findings 4 (cli.exit_codes)


def copy_data_dir(source: Path, target: Path) -> None:
    """The committed files as an operator's data dir: private, as the
    service demands of its key file."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("ledger.sql"))
    os.chmod(target, 0o700)
    os.chmod(target / KEY_FILE, 0o600)


def restore_dump(database: Any, schema: str) -> None:
    """The pg_dump of the golden schema, loaded into the test's own schema."""
    import psycopg

    written_in = MANIFEST["postgres"]["schema_in_dump"]
    lines = (GOLDEN / "postgres" / "ledger.sql").read_text().splitlines()
    dump = "\n".join(line for line in lines if not line.startswith("\\"))  # psql meta-commands
    dump = dump.replace(f"CREATE SCHEMA {written_in};", "")
    dump = dump.replace(f"{written_in}.", f'"{schema}".')
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(dump)


@pytest.fixture(params=["sqlite", "postgres"])
def golden(request, tmp_path: Path) -> Iterator[tuple[StoreConfig, dict[str, Any]]]:
    kind = request.param
    if kind == "sqlite":
        store = sqlite_store(tmp_path)
        copy_data_dir(GOLDEN / "sqlite", store.settings.data_dir)
        yield store, MANIFEST["sqlite"]
        return
    store = request.getfixturevalue("postgres")
    copy_data_dir(GOLDEN / "postgres", store.settings.data_dir)
    database = request.getfixturevalue("postgres_database")
    restore_dump(database, store.settings.postgres_schema)
    yield store, MANIFEST["postgres"]


def deals_ledger(store: StoreConfig, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALS_")}
    env["DEALS_DATA_DIR"] = str(store.settings.data_dir)
    if store.kind == "postgres":
        env["DEALS_DATABASE_URL"] = str(store.settings.database_url)
        env["DEALS_POSTGRES_SCHEMA"] = str(store.settings.postgres_schema)
    command = Path(sys.executable).with_name("deals-ledger")
    return subprocess.run(
        [str(command), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        cwd=store.settings.data_dir.parent,
    )


def replay_is_clean(store: StoreConfig, manifest: dict[str, Any], *options: str) -> None:
    run = deals_ledger(store, "replay", "--json", *options)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["events_replayed"] >= manifest["head_position"]
    assert report["supply_ok"] and not report["mismatches"], report
    assert report["first_tampered_position"] is None


def stored_log(store: StoreConfig) -> tuple[Counter[str], set[UUID]]:
    from application.write.event_store import LedgerApplication

    app = LedgerApplication(store.env)
    try:
        notifications = app.recorder.select_notifications(start=1, limit=10**6)
        return Counter(n.topic for n in notifications), {n.originator_id for n in notifications}
    finally:
        app.close()


def test_every_stored_event_and_snapshot_loads_with_todays_classes(golden) -> None:
    from application.write.event_store import LedgerApplication

    store, manifest = golden
    topics, ids = stored_log(store)
    written = Counter({topic: count for topic, count in manifest["event_topics"].items()})
    assert topics - written == Counter(), "the log holds events the manifest does not know"
    assert len(ids) >= manifest["aggregates"]
    app = LedgerApplication(store.env)
    try:
        for aggregate_id in ids:
            assert app.repository.get(aggregate_id).id == aggregate_id
        for name, account_id in manifest["accounts"].items():
            assert app.account(UUID(account_id)).balance == manifest["balances"][name], name
    finally:
        app.close()


def test_the_golden_ledger_replays_projects_settles_and_reconciles(golden) -> None:
    store, manifest = golden
    replay_is_clean(store, manifest)
    replay_is_clean(store, manifest, "--rebuild")

    settle = deals_ledger(store, "settle", "--once")
    assert settle.returncode == 0, settle.stdout + settle.stderr
    assert "waiting: 0" in settle.stdout

    reconcile = deals_ledger(store, "reconcile", "--full", "--json")
    assert reconcile.returncode in (0, FINDINGS_EXIT_STATUS), reconcile.stdout + reconcile.stderr
    report = json.loads(reconcile.stdout)
    known = set(manifest["notes"]["chain_only_signatures"])
    assert {f["signature"] for f in report["unmatched_signatures"]} <= known, report
    assert [f["kind"] for f in report["mismatches"]] == ["uncompensated_failure"], report
    assert report["mismatches"][0]["transfer_id"] == manifest["notes"]["compensation_blocked"]

    settled_balances_and_statuses(store, manifest)
    replay_is_clean(store, manifest)


def test_replaying_a_ledger_written_before_seals_changes_nothing(golden) -> None:
    """An auditor replays a backup (or, on PostgreSQL, from a host of its
    own): the replay must neither generate a commit seal key nor record a
    start seal, or the API hosts, lacking that key, would refuse to start."""
    store, manifest = golden
    replay_is_clean(store, manifest)
    assert not (store.settings.data_dir / COMMIT_KEYS_FILE_NAME).exists()
    assert start_seal(store) is None


def test_a_replay_with_a_key_but_no_seal_is_refused_as_seals_removed(golden) -> None:
    """A key file beside a log with no start seal means sealing began and
    the seals table was emptied: the replay refuses (exit 78) rather than
    accept unsealed events on the word of rows in the same database."""
    store, _ = golden
    key_file = store.settings.data_dir / COMMIT_KEYS_FILE_NAME
    key_file.write_text(f"k1:{'ab' * 32}\n")
    key_file.chmod(0o600)
    run = deals_ledger(store, "replay", "--json")
    assert run.returncode == 78, run.stdout + run.stderr
    assert "no commit seal" in run.stderr
    assert start_seal(store) is None


def start_seal(store: StoreConfig) -> object:
    from application.write.event_store import LedgerApplication

    app = LedgerApplication(store.env)
    try:
        return app.event_log.start_seal()  # type: ignore[attr-defined]
    finally:
        app.close()


def settled_balances_and_statuses(store: StoreConfig, manifest: dict[str, Any]) -> None:
    from application.write.event_store import LedgerApplication

    app = LedgerApplication(store.env)
    try:
        for transfer_id in manifest["unsettled"]:
            assert app.transfer(UUID(transfer_id)).status == "settled", transfer_id
        assert app.transfer(UUID(manifest["notes"]["failed"])).status == "reversed"
        for name, account_id in manifest["accounts"].items():
            assert app.account(UUID(account_id)).balance == manifest["balances"][name], name
    finally:
        app.close()


def test_todays_readers_agree_with_what_the_golden_ledger_holds(golden) -> None:
    """Independent oracles for what today's code derives from the old data:
    the read models (rebuilt by today's fold) against the aggregates the
    library folds from the same events; every settled movement's memo, read
    from the chain's stored transaction bytes by today's memo parser."""
    store, manifest = golden
    replay_is_clean(store, manifest, "--rebuild")
    read_models_agree_with_the_aggregates(store, manifest)
    settled_memos_parse_with_todays_parser(store)


def read_models_agree_with_the_aggregates(store: StoreConfig, manifest: dict[str, Any]) -> None:
    from application.write.event_store import LedgerApplication
    from projections.runtime import ReadSide

    app = LedgerApplication(store.env)
    side = ReadSide(app, store.env)
    try:
        notifications = app.recorder.select_notifications(start=1, limit=10**6)
        transfers = {n.originator_id for n in notifications if n.topic.endswith("Transfer.Recorded")}
        assert len(transfers) >= 500
        for transfer_id in transfers:
            written, read = app.transfer(transfer_id), side.queries.transfer(transfer_id)
            assert (read.kind, read.status) == (written.kind, written.status), transfer_id
            assert read.amount == (written.posted_amount or written.amount), transfer_id
        for name, account_id in manifest["accounts"].items():
            assert side.queries.balance(UUID(account_id)).balance == manifest["balances"][name]
    finally:
        side.close()
        app.close()


def settled_memos_parse_with_todays_parser(store: StoreConfig) -> None:
    import sqlite3

    from solders.transaction import Transaction

    from application.settlement.process import GENESIS_MEMO
    from application.write.event_store import LedgerApplication
    from domain.system import GENESIS_MINT_ID
    from interface.chain.transactions import memo_texts, memo_transfer_ids

    chain = sqlite3.connect(store.settings.data_dir / "chain" / "embedded-solana.sqlite3")
    app = LedgerApplication(store.env)
    try:
        raw_by_signature = dict(chain.execute("SELECT signature, raw FROM transactions"))
        notifications = app.recorder.select_notifications(start=1, limit=10**6)
        settled = {n.originator_id for n in notifications if n.topic.endswith("Transfer.Settled")}
        checked = 0
        for transfer_id in settled:
            transfer = app.transfer(transfer_id)
            memos = memo_texts(Transaction.from_bytes(raw_by_signature[transfer.signature]).message)
            if transfer_id == GENESIS_MINT_ID:  # put on chain by the chain's own genesis
                assert memos == (GENESIS_MEMO,)
            else:
                assert transfer_id in memo_transfer_ids(memos), transfer_id
            checked += 1
        assert checked >= 500
    finally:
        app.close()
        chain.close()


def test_the_derived_tables_keep_every_table_and_column_of_v1(tmp_path) -> None:
    """Operators query the read models and the settlement store: their table
    and column names are a contract even though the rows are rebuilt."""
    import sqlite3

    from application.settlement.store import open_settlement_store
    from application.write.event_store import LedgerApplication
    from projections.read_model_store import open_store

    today = sqlite_store(tmp_path)
    app = LedgerApplication(today.env)
    open_store(today.env).close()
    open_settlement_store(app.recorder).close()
    app.close()
    for name in ("readmodels.sqlite", "settlement.sqlite"):
        v1, now = (sqlite3.connect(d / name) for d in (GOLDEN / "sqlite", today.settings.data_dir))
        try:
            missing = sorted(columns_of(v1) - columns_of(now))
        finally:
            v1.close()
            now.close()
        assert not missing, f"{name}: tables or columns of v1 gone today: {missing}"


def columns_of(db: Any) -> set[tuple[str, str]]:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {(table, row[1]) for table in tables
            for row in db.execute(f"PRAGMA table_info({table})")}  # noqa: S608


def test_wallets_and_derived_ids_of_v1_are_found_after_ledger_ids_were_reserved(golden) -> None:
    """v1 derived its wallet, compensation and adjustment ids as plain uuid5;
    today's code derives version 8 ids (``domain.ids``) and must still find
    the old ones: a live v1 wallet stays connected where it is, and a
    repeated compensation or adjustment answers the movement v1 recorded."""
    from datetime import UTC, datetime

    from application import commands as c
    from domain.errors import IdempotencyConflict, WalletAlreadyConnected
    from domain.wallet import Wallet, legacy_wallet_id, wallet_id
    from tests.support.ledgers import LedgerHarness

    store, manifest = golden
    ledger = LedgerHarness(store.env, clock=lambda: datetime.now(UTC), genesis=False)
    try:
        accounts = {name: UUID(value) for name, value in manifest["accounts"].items()}
        for name, address in manifest["notes"]["wallets"].items():
            wallet = ledger.app.repository.get(legacy_wallet_id(address))
            assert isinstance(wallet, Wallet) and wallet.address == address
            assert wallet.account_id == accounts[name], name
            with pytest.raises(WalletAlreadyConnected):
                ledger.execute(c.ConnectWallet(accounts["alice"], address))
            ledger.execute(c.DisconnectWallet(accounts[name], address))
            ledger.execute(c.ConnectWallet(accounts[name], address))
            assert ledger.app.repository.get(wallet.id).version == wallet.version + 2
            assert not list(ledger.app.events.get(wallet_id(address)))  # nothing new beside it

        head = ledger.app.event_log.head()
        failed = ledger.app.transfer(UUID(manifest["notes"]["failed"]))
        assert failed.reversed_by is not None
        assert ledger.execute(c.RetryCompensation(failed.id)).transfer_id == failed.reversed_by
        notifications = ledger.app.recorder.select_notifications(start=1, limit=10**6)
        adjusted = {n.originator_id for n in notifications if n.topic.endswith("Finding.Adjusted")}
        assert adjusted
        for finding_id in adjusted:
            try:
                outcome = ledger.execute(c.AdjustForFinding(finding_id))
            except IdempotencyConflict:  # v1 gave it a reason: another request, not a new one
                continue
            assert outcome.transfer_id == ledger.app.repository.get(finding_id).adjusted_by
        assert ledger.app.event_log.head() == head
    finally:
        ledger.close()


def test_a_v1_hold_past_its_expiry_reserves_nothing_before_it_is_swept(golden) -> None:
    """v1's HoldPlaced carries no expiry; the hold's own record does, and a
    spend of what it reserved goes through (recording the expiry first)."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from application import commands as c
    from tests.support.ledgers import LedgerHarness, SettableClock

    store, manifest = golden
    clock = SettableClock(datetime(2027, 2, 1, tzinfo=UTC))  # past every v1 hold (30 days at most)
    ledger = LedgerHarness(store.env, clock=clock, genesis=False)
    try:
        hold = ledger.app.transfer(UUID(manifest["notes"]["open_hold"]))
        assert hold.phase == "pending" and hold.expires_at < clock.now
        owner = ledger.app.account(hold.source)
        assert owner.holds_without_expiry() == [hold.id] and owner.held == hold.amount
        receiver = next(UUID(account) for name, account in manifest["accounts"].items()
                        if name not in ("treasury", "rewards", "issuance")
                        and UUID(account) != owner.id
                        and not ledger.app.account(UUID(account)).frozen)
        ledger.execute(c.TransferFunds(uuid4(), owner.id, receiver, owner.balance))
        assert ledger.app.transfer(hold.id).phase == "expired"
        spent = ledger.app.account(owner.id)
        assert (spent.balance, spent.held) == (0, 0)
    finally:
        ledger.close()
