"""The settler as processes run it: one active per store (the lease), the
other standing by and taking over; inside LedgerService; and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application import commands as c
from application.authority import INTERNAL
from application.settlement.chain_port import SignedSubmission
from application.settlement.fold import SettlementFold
from application.settlement.process import SettlementConfig, SettlementHooks
from application.settlement.store import SETTLEMENT_STEPS, open_settlement_store
from application.settlement.worker import SettlementWorker
from domain.amounts import UNITS_PER_DEAL
from domain.system import TREASURY_ID
from interface.chain import transactions as tx
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.wiring.service import LedgerService
from interface.wiring.settings import Settings
from interface.wiring.settler import lease_for
from tests.settlement.conftest import FAST_RETRY
from tests.support.http import wait_while_progressing
from tests.support.ledgers import LedgerHarness
from tests.support.stores import StoreConfig, sqlite_store

DEAL = UNITS_PER_DEAL
WAIT_S = 30.0
SETTLE_STALL_S_MAX = 30.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


class CountingChain(LiteSvmChain):
    """The embedded chain, shared by the workers of one test, counting the
    sends of one worker; closing it leaves the shared chain open."""

    def __init__(self, embedded: EmbeddedSolana, custody, sends: list[str]) -> None:
        super().__init__(embedded, custody)
        self.sends = sends

    async def send(self, submission: SignedSubmission) -> None:
        self.sends.append(submission.signature)
        await super().send(submission)

    async def close(self) -> None:
        pass


@pytest.fixture
def ledger(store: StoreConfig) -> Iterator[LedgerHarness]:
    harness = LedgerHarness(store.env)
    yield harness
    harness.close()


def settled(ledger: LedgerHarness, transfer_ids: list[UUID]) -> Callable[[], bool]:
    return lambda: all(
        ledger.app.transfer(t).settlement_status == "settled" for t in transfer_ids
    )


def unsettled(ledger: LedgerHarness, transfer_ids: list[UUID]) -> Callable[[], int]:
    return lambda: sum(
        ledger.app.transfer(t).settlement_status != "settled" for t in transfer_ids
    )


def test_one_settler_works_the_other_stands_by_and_takes_over(
    ledger: LedgerHarness, tmp_path: Path
) -> None:
    custody = load_custody_keypair(None, tmp_path / "keys")
    embedded = EmbeddedSolana(tmp_path / "chain")
    stores = []

    def worker(sends: list[str]) -> SettlementWorker:
        store = open_settlement_store(ledger.app.recorder)
        stores.append(store)
        return SettlementWorker(
            writer=ledger.writer, fold=SettlementFold(ledger.app, store),
            lease=lambda: lease_for(ledger.app.recorder),
            open_chain=lambda: CountingChain(embedded, custody, sends), chain_is_exclusive=True,
            config=SettlementConfig(poll_interval_s=0.005, retry=FAST_RETRY),
            idle_interval_s=0.02, standby_interval_s=0.02,
        )

    sends_a: list[str] = []
    sends_b: list[str] = []
    first, second = worker(sends_a), worker(sends_b)
    try:
        first.start()
        wait_until(lambda: first.active, "the first settler is active")
        second.start()
        wait_until(second.standing_by.is_set, "the second stands by")
        alice = ledger.open_account()
        batch = [uuid4() for _ in range(6)]
        for transfer_id in batch:
            ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
        first.wake()
        wait_until(settled(ledger, batch), "the first batch settled")
        assert sends_a and not sends_b and not second.active

        first.stop()
        wait_until(lambda: second.active, "the second took over")
        later = [uuid4() for _ in range(3)]
        for transfer_id in later:
            ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, alice, DEAL))
        second.wake()
        wait_until(settled(ledger, later), "the later batch settled")
        assert sends_b
        assert not set(sends_a) & set(sends_b)
    finally:
        first.stop()
        second.stop()
        embedded.close()
        for store in stores:
            store.close()


def test_the_service_settles_in_the_background_and_reconciles_on_demand(
    store: StoreConfig, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=store.settings.data_dir, database_url=store.settings.database_url,
        postgres_schema=store.settings.postgres_schema, settlement_poll_interval_s=0.01,
        reconcile_interval_s=0,
    )
    service = LedgerService(settings).start()
    try:
        assert service.settlement.wait_active(WAIT_S)
        account = uuid4()
        service.writer.execute(c.OpenAccount(account), authority=INTERNAL)
        transfer_id = uuid4()
        funding = c.TransferFunds(transfer_id, TREASURY_ID, account, 3 * DEAL)
        service.writer.execute(funding, authority=INTERNAL)
        wait_until(lambda: service.app.transfer(transfer_id).status == "settled", "settled")

        report = service.run_reconciliation()

        assert report.clean and report.checked_accounts == 3
        assert service.latest_reconciliation() == report
    finally:
        service.stop()


# --- the CLI ----------------------------------------------------------------------


def cli(data_dir: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEALS_DATA_DIR": str(data_dir)}
    for name in ("DEALS_DATABASE_URL", "DEALS_SOLANA_RPC_URL", "DEALS_CUSTODY_KEYPAIR"):
        env.pop(name, None)
    script = Path(sys.executable).parent / "deals-ledger"
    return subprocess.run(  # noqa: S603 - our own console script
        [str(script), *args], env=env, cwd=data_dir.parent, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )


def test_cli_settles_once_reconciles_and_reports_findings(tmp_path: Path) -> None:
    data_dir = sqlite_store(tmp_path).settings.data_dir
    ledger = LedgerHarness(sqlite_store(tmp_path).env)
    alice = ledger.open_account()
    ledger.execute(c.TransferFunds(uuid4(), TREASURY_ID, alice, 4 * DEAL))
    ledger.close()

    settled_run = cli(data_dir, "settle", "--once")
    clean = cli(data_dir, "reconcile", "--json")

    assert settled_run.returncode == 0, settled_run.stderr
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["mismatches"] == [] and report["unmatched_signatures"] == []
    assert report["checked_accounts"] == 3 and report["finished_at"]

    custody = load_custody_keypair(None, data_dir)
    chain = EmbeddedSolana(data_dir / "chain")
    chain.transfer_directly(
        custody, tx.token_account_address(custody.pubkey, TREASURY_ID),
        tx.token_account_address(custody.pubkey, alice), 1,
    )
    chain.close()
    found = cli(data_dir, "reconcile", "--json")
    latest = cli(data_dir, "reconcile", "--latest", "--json")

    assert found.returncode == 4, found.stderr  # exit_codes.FINDINGS
    report = json.loads(found.stdout)
    assert len(report["unmatched_signatures"]) == 1
    amounts = {m["account_id"]: (m["expected"], m["actual"]) for m in report["mismatches"]}
    assert amounts[str(alice)] == ("4", "4.00000001")
    assert json.loads(latest.stdout) == report
    finding = next(m for m in report["mismatches"] if m["account_id"] == str(alice))
    adjusted = cli(data_dir, "reconcile", "--adjust", finding["finding_id"], "--json")
    assert adjusted.returncode == 0, adjusted.stderr
    assert json.loads(adjusted.stdout)["kind"] == "mint"


def test_while_a_settler_holds_the_embedded_chain_others_are_refused(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    ledger = LedgerHarness(store.env)
    lease = lease_for(ledger.app.recorder)
    assert lease.try_acquire()
    try:
        settle = cli(store.settings.data_dir, "settle", "--once")
        reconcile = cli(store.settings.data_dir, "reconcile")
    finally:
        lease.release()
        ledger.close()
    assert settle.returncode == 1  # exit_codes.FAILURE: it may pass, unlike a refused setting
    assert "another settler holds the settlement lease" in settle.stderr
    assert reconcile.returncode == 1
    assert "the embedded chain is held by the active settler" in reconcile.stderr


def test_the_settler_outlives_a_failing_step(
    ledger: LedgerHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    custody = load_custody_keypair(None, tmp_path / "keys")
    embedded = EmbeddedSolana(tmp_path / "chain")
    store = open_settlement_store(ledger.app.recorder)
    failures: list[str] = []

    def fail_once(signed: SignedSubmission) -> None:
        if not failures:
            failures.append(signed.signature)
            raise RuntimeError("a bug in one step")

    worker = SettlementWorker(
        writer=ledger.writer, fold=SettlementFold(ledger.app, store),
        lease=lambda: lease_for(ledger.app.recorder),
        open_chain=lambda: CountingChain(embedded, custody, []), chain_is_exclusive=True,
        config=SettlementConfig(poll_interval_s=0.005, retry=FAST_RETRY),
        idle_interval_s=0.02, hooks=SettlementHooks(before_send=fail_once),
    )
    try:
        worker.start()
        transfer_id = uuid4()
        ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, ledger.open_account(), DEAL))
        wait_until(settled(ledger, [transfer_id]), "settled after the failure")
        assert failures
        assert any("with a bug" in record.getMessage() for record in caplog.records)
    finally:
        worker.stop()
        embedded.close()
        store.close()


def test_reconciling_while_a_settler_works_makes_no_false_findings(
    ledger: LedgerHarness, tmp_path: Path
) -> None:
    import asyncio
    import threading

    from application.settlement.reconciler import Reconciler, ReconciliationConfig

    custody = load_custody_keypair(None, tmp_path / "keys")
    embedded = EmbeddedSolana(tmp_path / "chain")
    store = open_settlement_store(ledger.app.recorder)
    reconciler_store = open_settlement_store(ledger.app.recorder)
    worker = SettlementWorker(
        writer=ledger.writer, fold=SettlementFold(ledger.app, store),
        lease=lambda: lease_for(ledger.app.recorder),
        open_chain=lambda: CountingChain(embedded, custody, []), chain_is_exclusive=True,
        config=SettlementConfig(poll_interval_s=0.001, retry=FAST_RETRY), idle_interval_s=0.005,
    )
    accounts = [ledger.open_account() for _ in range(3)]
    recorded: list[UUID] = []
    stop_recording = threading.Event()

    def record() -> None:
        while not stop_recording.is_set() and len(recorded) < 400:
            transfer_id = uuid4()
            ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, accounts[len(recorded) % 3], 1))
            recorded.append(transfer_id)

    async def reconcile_repeatedly() -> list:
        reconciler = Reconciler(
            writer=ledger.writer, fold=SettlementFold(ledger.app, reconciler_store),
            chain=CountingChain(embedded, custody, []),
            config=ReconciliationConfig(accounts_page=2, retry=FAST_RETRY),
        )
        reports, overlapped = [], 0
        while len(reports) < 3 or recorder.is_alive():
            steps = reconciler_store.meta(SETTLEMENT_STEPS)
            reports.append(await reconciler.run())
            overlapped += reconciler_store.meta(SETTLEMENT_STEPS) > steps
        assert overlapped, "no run overlapped settlement: the test proves nothing"
        return reports

    recorder = threading.Thread(target=record)
    try:
        worker.start()
        wait_until(lambda: worker.active, "the settler is active")
        recorder.start()
        reports = asyncio.run(reconcile_repeatedly())
        stop_recording.set()
        recorder.join(30)
        # up to 400 movements: a busy machine settles them slower, never not at all
        wait_while_progressing(unsettled(ledger, recorded), SETTLE_STALL_S_MAX,
                               "settling what was recorded")
        assert all(report.clean for report in reports), [r for r in reports if not r.clean]
    finally:
        stop_recording.set()
        worker.stop()
        embedded.close()
        store.close()
        reconciler_store.close()


class UnreachableChain(CountingChain):
    """A chain whose endpoint refuses every call, counting when the settler
    opened it (one opening per attempt to start settling)."""

    def __init__(self, embedded: EmbeddedSolana, custody, opened: list[float]) -> None:
        super().__init__(embedded, custody, [])
        opened.append(time.time())

    async def ensure_genesis(self, treasury_id: UUID, initial_supply: int) -> None:
        from application.settlement.chain_port import ChainUnavailableError

        raise ChainUnavailableError("getBlockHeight to http://127.0.0.1:9 failed: ConnectError")


def test_a_paused_settler_waits_what_its_log_says_and_reports_the_pause(
    ledger: LedgerHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """During an outage new commands do not cut the backoff short (each
    would retry at once), so "next attempt in" is the real wait; the paused
    settler is not "active" anywhere, and still reads the log, so its backlog
    counts what waits."""
    import re

    custody = load_custody_keypair(None, tmp_path / "keys")
    embedded = EmbeddedSolana(tmp_path / "chain")
    store = open_settlement_store(ledger.app.recorder)
    opened: list[float] = []
    worker = SettlementWorker(
        writer=ledger.writer, fold=SettlementFold(ledger.app, store),
        lease=lambda: lease_for(ledger.app.recorder),
        open_chain=lambda: UnreachableChain(embedded, custody, opened), chain_is_exclusive=True,
        config=SettlementConfig(poll_interval_s=0.005, retry=FAST_RETRY), idle_interval_s=0.02,
    )
    liveness = worker.liveness()
    caplog.set_level("WARNING", logger="application.settlement.worker")
    try:
        worker.start()
        ledger.execute(c.TransferFunds(uuid4(), TREASURY_ID, ledger.open_account(), DEAL))
        while len(opened) < 5:  # commands keep waking the settler, as the writer does
            worker.wake()
            time.sleep(0.005)
        assert not worker.settling and worker.last_failure is not None
        assert liveness.settler_active() is False
        assert liveness.lag_events() == 0 and liveness.backlog() >= 1
    finally:
        worker.stop()
        embedded.close()
    paused = [(record.created, float(re.search(r"next attempt in ([\d.]+)s", record.getMessage())[1]))
              for record in caplog.records if record.getMessage().startswith("settlement paused")]
    assert len(paused) >= 4
    for (failed_at, wait_s), next_open in zip(paused, opened[1:], strict=False):
        assert next_open - failed_at >= wait_s - 0.01, (wait_s, next_open - failed_at)
    assert [wait for _, wait in paused[:4]] == [0.1, 0.2, 0.4, 0.8]
    store.close()
