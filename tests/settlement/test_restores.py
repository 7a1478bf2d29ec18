"""Restores and failovers never pay twice (issue 18): the store is snapshot,
more is settled, the snapshot is restored and the settler restarted; the
chain keeps its own state (the embedded chain's files are not restored).
Whatever the restored log had waiting is found on chain and recorded, never
sent again; what the log lost entirely stops settlement with an alert naming
it until an operator acknowledges it, and the reconciliation names it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from application import commands as c
from application.alerts import AlertKind
from application.eventlog.seals import SEALS_TABLE
from application.settlement.chain_lookup import ChainAheadOfLog
from application.settlement.chain_port import SignedSubmission
from application.settlement.fold import SettlementFold
from application.settlement.worker import SettlementWorker
from domain.reconciliation import BALANCE_MISMATCH, UNKNOWN_SIGNATURE
from domain.transfer import SETTLED, SETTLEMENT_QUEUED, SETTLEMENT_SUBMITTED
from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.wiring.settler import lease_for
from tests.settlement.conftest import DEAL, SettlementRig, SimulatedCrash
from tests.support.alerts import CollectedAlerts
from tests.support.stores import StoreConfig, sqlite_store

pytestmark = pytest.mark.anyio


class StoreSnapshot:
    """A backup of the whole store (event log and derived tables), never of
    the chain: SQLite files copied with every process stopped, PostgreSQL
    the schema through pg_dump and pg_restore."""

    def __init__(self, store: StoreConfig, tmp_path: Path) -> None:
        self.store = store
        self.path = tmp_path / "snapshot"

    def take(self) -> None:
        if self.store.kind == "sqlite":
            shutil.copytree(self.store.settings.data_dir, self.path)
            return
        _run("pg_dump", "--format=custom", f"--schema={self._schema}",
             f"--file={self.path}", self._url)

    def restore(self, *, only: tuple[str, ...] = ()) -> None:
        """``only``: SQLite file names to put back (the rest stays as it is)."""
        if self.store.kind == "sqlite":
            data_dir = self.store.settings.data_dir
            for name in only or tuple(p.name for p in self.path.iterdir()):
                for stale in data_dir.glob(f"{name}*"):
                    stale.unlink()
                for kept in self.path.glob(f"{name}*"):
                    shutil.copy2(kept, data_dir / kept.name)
            return
        _run("psql", "--quiet", "-c", f'DROP SCHEMA "{self._schema}" CASCADE', self._url)
        _run("pg_restore", f"--dbname={self._url}", str(self.path))

    def restore_log(self) -> None:
        """Put the event log alone back, as docs/operations.md allows: the
        embedded ``events.sqlite``, or the log's tables of the PostgreSQL
        schema (events, snapshots, commit seals); every derived table stays."""
        if self.store.kind == "sqlite":
            self.restore(only=("events.sqlite",))
            return
        listed = subprocess.run(  # noqa: S603
            ("psql", "-qAt", "-c", "SELECT tablename FROM pg_tables WHERE schemaname = "
             f"'{self._schema}'", self._url), check=True, capture_output=True, text=True,
            timeout=120).stdout.split()
        tables = [t for t in listed if t.startswith("dealsledger_") or t == SEALS_TABLE]
        _run("psql", "--quiet", "-c", "TRUNCATE " + ", ".join(
            f'"{self._schema}"."{table}"' for table in tables), self._url)
        _run("pg_restore", "--data-only", f"--dbname={self._url}",
             *(f"--table={table}" for table in tables), str(self.path))

    @property
    def _schema(self) -> str:
        assert self.store.settings.postgres_schema is not None
        return self.store.settings.postgres_schema

    @property
    def _url(self) -> str:
        assert self.store.settings.database_url is not None
        return self.store.settings.database_url


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603


async def _restart(rig: SettlementRig, *, while_stopped: Callable[[], None] = lambda: None,
                   acknowledged: frozenset[str] = frozenset()) -> SettlementRig:
    """Stop the settler (and the ledger), do ``while_stopped``, start again
    over the store and the chain's files (genesis runs again, as at every
    start)."""
    await rig.close()
    while_stopped()
    again = SettlementRig(rig.store_config, rig.chain_dir.parent, chain_kind=rig.chain_kind,
                          netting_window_s=rig.config.netting_window_s)
    again.accounts = rig.accounts
    again.config = replace(again.config, acknowledged=acknowledged)
    again.process = again._new_process()
    return again


def _transfers(rig: SettlementRig, source: UUID, destination: UUID, count: int) -> list[UUID]:
    ids = [uuid4() for _ in range(count)]
    for index, transfer_id in enumerate(ids):
        rig.execute(c.TransferFunds(transfer_id, source, destination, (index + 1) * DEAL))
    return ids


async def _carried(rig: SettlementRig) -> Counter[UUID]:
    """Each movement id, counted once per successful transaction the fee
    payer paid whose memo names it: how many times it executed on chain (a
    stranger's transaction naming the fee payer moves none of ours)."""
    counts: Counter[UUID] = Counter()
    before = None
    while page := await rig.chain.fee_payer_signatures(before=before):
        for signature in page:
            landed = await rig.chain.transaction(signature)
            assert landed is not None
            if landed.error is None and landed.fee_payer == rig.chain.fee_payer_address:
                counts.update(landed.memo_transfer_ids)
        before = page[-1]
    return counts


@pytest.mark.parametrize("chain_kind", ["litesvm", "rpc"])
async def test_a_restored_store_settles_nothing_twice_and_names_what_it_lost(
    store: StoreConfig, tmp_path: Path, chain_kind: str, raised: CollectedAlerts,
) -> None:
    rig = SettlementRig(store, tmp_path, chain_kind=chain_kind)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        payer, payee, other = (rig.open_account(funded=1000 * DEAL) for _ in range(3))
        await rig.settle()
        in_flight = _transfers(rig, other, payee, 2)
        rig.hooks.before_send = _crash  # recorded, not sent, at the snapshot
        with pytest.raises(SimulatedCrash):
            await rig.settle()
        waiting = _transfers(rig, payer, payee, 6)  # queued at the snapshot
        rig = await _restart(rig, while_stopped=snapshot.take)

        await rig.settle()
        lost = _transfers(rig, payee, payer, 3)  # recorded and settled after the snapshot
        await rig.settle()
        lost_signatures = {rig.transfer(transfer_id).signature for transfer_id in lost}
        rig = await _restart(rig, while_stopped=snapshot.restore)

        assert {rig.transfer(t).settlement_status for t in waiting} == {SETTLEMENT_QUEUED}
        assert {rig.transfer(t).settlement_status for t in in_flight} == {SETTLEMENT_SUBMITTED}
        with pytest.raises(ChainAheadOfLog) as stopped:
            await rig.step()
        for named in (*lost, *lost_signatures):
            assert str(named) in str(stopped.value)
        (alert,) = raised.of(AlertKind.CHAIN_AHEAD_OF_LOG)
        assert set(str(alert.fields["signatures"]).split(",")) == lost_signatures
        for transfer_id in waiting:  # found on chain and recorded, not sent again
            assert rig.transfer(transfer_id).settlement_status == SETTLED
        with pytest.raises(ChainAheadOfLog):  # nothing goes on until an operator resolves it
            await rig.step()

        report = await rig.reconcile(full=True)
        unknown = {f.signature for f in report.unmatched_signatures if f.kind == UNKNOWN_SIGNATURE}
        assert unknown == lost_signatures
        assert any(str(lost[0]) in f.detail for f in report.unmatched_signatures)
        assert {f.account_id for f in report.mismatches if f.kind == BALANCE_MISMATCH} == {
            payer, payee}

        rig = await _restart(rig, acknowledged=frozenset(lost_signatures))
        after = _transfers(rig, payer, other, 2)
        _send_again(rig, lost[0], payee, payer, 1)  # a client retries a lost command
        await rig.settle()
        _send_again(rig, lost[1], payee, payer, 2)  # ...and another, later
        await rig.settle()
        carried = await _carried(rig)
        for transfer_id in (*in_flight, *waiting, *lost, *after):
            assert carried[transfer_id] == 1, transfer_id
        for transfer_id in (*in_flight, *waiting, *after, *lost[:2]):
            assert rig.transfer(transfer_id).settlement_status == SETTLED
        assert {rig.transfer(t).signature for t in lost[:2]} <= lost_signatures
        assert max(carried.values()) == 1
    finally:
        await rig.close()


async def test_a_settlement_store_newer_than_the_restored_log_is_folded_again(
    tmp_path: Path,
) -> None:
    """Only the event log put back (the guide's minimum): the settlement
    tables, ahead of it, would skip the log's new events; they are rebuilt."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
        await rig.settle()
        rig = await _restart(rig, while_stopped=snapshot.take)
        lost = _transfers(rig, payer, payee, 3)
        await rig.settle()
        lost_signatures = frozenset(rig.transfer(t).signature for t in lost)
        rig = await _restart(rig, while_stopped=lambda: snapshot.restore(only=("events.sqlite",)))
        await rig._close_chain()  # the worker below opens the embedded chain itself
        why = _settler_stops(rig)
        assert "the chain is ahead of the log" in why
        assert all(signature in why for signature in lost_signatures)
        assert rig.store.position() == rig.ledger.app.event_log.head()

        rig = await _restart(rig, acknowledged=lost_signatures)
        after = _transfers(rig, payer, payee, 1)
        await rig.settle()
        assert rig.transfer(after[0]).settlement_status == SETTLED
        assert max((await _carried(rig)).values()) == 1
    finally:
        await rig.close()


def _settler_stops(rig: SettlementRig) -> str:
    """Run the settler as a process does, until it stops settling; what it
    says why (``/ready``'s settlement.last_error). It sent nothing."""
    sends: list[str] = []
    worker = SettlementWorker(
        writer=rig.ledger.writer, fold=SettlementFold(rig.ledger.app, rig.store),
        lease=lambda: lease_for(rig.ledger.app.recorder),
        open_chain=lambda: _CountingChain(EmbeddedSolana(rig.chain_dir), rig.custody, sends),
        chain_is_exclusive=True, config=rig.config, idle_interval_s=0.02,
    )
    try:
        worker.start()
        deadline = time.monotonic() + 60
        while worker.last_failure is None:
            assert time.monotonic() < deadline, "the settler never stopped"
            worker.wake()
            time.sleep(0.01)
        assert not worker.settling
    finally:
        worker.stop()
    assert sends == []
    return worker.last_failure


class _CountingChain(LiteSvmChain):
    def __init__(self, embedded: EmbeddedSolana, custody: CustodyKey, sends: list[str]) -> None:
        super().__init__(embedded, custody)
        self.sends = sends

    async def send(self, submission: SignedSubmission) -> None:
        self.sends.append(submission.signature)
        await super().send(submission)


def _send_again(rig: SettlementRig, transfer_id: UUID, source: UUID, destination: UUID,
                deal: int) -> None:
    outcome = rig.execute(c.TransferFunds(transfer_id, source, destination, deal * DEAL))
    assert not outcome.replayed  # the restored ledger never saw it


def _crash(_signed: object) -> None:
    raise SimulatedCrash("before_send")


async def test_a_transaction_sent_before_the_restore_that_lands_late_is_not_sent_again(
    store: StoreConfig, tmp_path: Path,
) -> None:
    """A transaction signed, recorded and sent just before the loss, still
    on its way when the store (restored without its record) starts again:
    it lands while the settler waits for every earlier blockhash to expire,
    and the lookup after the wait records it; without the wait the movement
    was signed again and the late one landed too (executed twice)."""
    rig = SettlementRig(store, tmp_path, chain_kind="rpc")
    snapshot = StoreSnapshot(store, tmp_path)
    try:  # both token accounts exist: the late transaction creates none, it can land
        payer, payee = (rig.open_account(funded=100 * DEAL) for _ in range(2))
        await rig.settle()
        (movement,) = _transfers(rig, payer, payee, 1)
        rig = await _restart(rig, while_stopped=snapshot.take)  # queued at the snapshot
        sent: list[SignedSubmission] = []

        def on_its_way(signed: SignedSubmission) -> None:
            sent.append(signed)  # in a leader's queue, not landed: then the loss
            raise SimulatedCrash("sent, not landed")

        rig.hooks.before_send = on_its_way
        with pytest.raises(SimulatedCrash):
            await rig.settle()
        rig.embedded.advance_slots(1)  # the cluster goes on (a new blockhash) during the restore
        rig = await _restart(rig, while_stopped=snapshot.restore)
        assert rig.transfer(movement).settlement_status == SETTLEMENT_QUEUED
        (late,) = sent
        waits: list[tuple[int | None, int | None]] = []

        def lands_meanwhile() -> None:
            wait = rig.process.lookup.wait
            assert wait is not None
            waits.append((wait.until_height, wait.block_height))
            _deliver(rig, late)

        rig.while_chain_waits = lands_meanwhile
        await rig.settle()
        _deliver(rig, late)  # reaches a leader now, if it has not landed yet

        assert (await _carried(rig))[movement] == 1
        assert rig.transfer(movement).signature == late.signature
        assert rig.transfer(movement).settlement_status == SETTLED
        (until, height), *_ = waits
        assert until is not None and height is not None and height <= until
        assert until >= late.last_valid_block_height  # the wait outlasts what was sent
    finally:
        await rig.close()


def _deliver(rig: SettlementRig, signed: SignedSubmission) -> None:
    """The cluster processes bytes sent earlier (refused once expired or landed)."""
    rig.embedded.process(Transaction.from_bytes(signed.transaction))


async def test_a_store_that_goes_back_under_a_running_settler_is_looked_up_again(
    sqlite_rig: SettlementRig, caplog: pytest.LogCaptureFixture,
) -> None:
    """A failover under a running settler: the store's position falls below
    one the settler saw; the next step looks the chain up before it sends
    (here the position it saw is set past the store's, as a failover to a
    replica behind it would leave it)."""
    rig = sqlite_rig
    payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
    await rig.settle()
    caplog.set_level("INFO", logger="application.settlement.chain_lookup")
    assert not await rig.step()
    assert "looks the chain up" not in caplog.text
    rig.process.lookup._seen_position = rig.store.position() + 100
    moved = _transfers(rig, payer, payee, 1)
    await rig.settle()
    assert "the settlement store went back" in caplog.text
    assert rig.transfer(moved[0]).settlement_status == SETTLED


ROUND = st.tuples(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 5)),
             min_size=0, max_size=4),
    st.sampled_from(["settle", "one step", "crash before send", "nothing"]),
)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(rounds=st.lists(ROUND, min_size=1, max_size=5), data=st.data())
async def test_whenever_the_snapshot_was_taken_no_movement_executes_twice(
    rounds: list[tuple[list[tuple[int, int, int]], str]], data: st.DataObject,
) -> None:
    """Rounds of transfers, each settled fully, by one step, up to a crash
    before sending, or not at all; the store snapshot after any round and
    restored after the last: restarted (and what the restore lost
    acknowledged once named), every movement executes on chain exactly
    once, and everything the restored log has settles."""
    snapshot_after = data.draw(st.integers(0, len(rounds) - 1))
    with tempfile.TemporaryDirectory() as folder:
        tmp_path = Path(folder)
        store = sqlite_store(tmp_path)
        rig = SettlementRig(store, tmp_path)
        snapshot = StoreSnapshot(store, tmp_path)
        try:
            accounts = [rig.open_account(funded=1000 * DEAL) for _ in range(3)]
            await rig.settle()
            recorded: list[UUID] = []
            for index, (moves, how) in enumerate(rounds):
                recorded += await _round(rig, accounts, moves, how)
                if index == snapshot_after:
                    rig = await _restart(rig, while_stopped=snapshot.take)
            rig = await _restart(rig, while_stopped=snapshot.restore)
            acknowledged: frozenset[str] = frozenset()
            try:
                await rig.settle()
            except ChainAheadOfLog as stopped:
                acknowledged = frozenset(item.signature for item in stopped.ahead)
                rig = await _restart(rig, acknowledged=acknowledged)
                await rig.settle()
            carried = await _carried(rig)
            assert all(carried[transfer_id] <= 1 for transfer_id in recorded)
            assert max(carried.values()) == 1
            for transfer_id in recorded:
                if rig.ledger.app.load(transfer_id) is not None:
                    assert rig.transfer(transfer_id).settlement_status == SETTLED
                    assert carried[transfer_id] == 1
        finally:
            await rig.close()


async def _round(rig: SettlementRig, accounts: list[UUID],
                 moves: list[tuple[int, int, int]], how: str) -> list[UUID]:
    ids = []
    for source, destination, deal in moves:
        if source != destination:
            ids.append(uuid4())
            rig.execute(c.TransferFunds(ids[-1], accounts[source], accounts[destination],
                                        deal * DEAL))
    if how == "settle":
        await rig.settle()
    elif how == "one step":
        await rig.step()
    elif how == "crash before send":
        rig.hooks.before_send = _crash
        with suppress(SimulatedCrash):
            await rig.settle()
        rig.hooks.before_send = None
        await rig.restart()
    return ids



def _stranger_memo(rig: SettlementRig, transfer_id: UUID) -> str:
    """A transaction someone else pays, naming ``transfer_id`` in a memo
    and paying the ledger's fee payer one lamport (so it is in the fee
    payer's signature history, as any transaction naming an address is)."""
    stranger = Keypair()
    rig.embedded.fund(stranger.pubkey(), 10**9)
    blockhash, _ = rig.embedded.latest_blockhash()
    tip = transfer(TransferParams(
        from_pubkey=stranger.pubkey(), to_pubkey=rig.custody.pubkey, lamports=1))
    message = Message.new_with_blockhash(
        [tip, tx.memo_instruction(transfer_id)], stranger.pubkey(), blockhash)
    outcome = rig.embedded.process(Transaction([stranger], message, blockhash))
    assert outcome.landed is not None and outcome.landed.error is None
    return outcome.landed.signature


@pytest.mark.parametrize("listed", ["in the history", "acknowledged"])
async def test_a_transaction_another_payer_paid_settles_and_stops_nothing(
    tmp_path: Path, listed: str,
) -> None:
    """Anyone can send a transaction naming the fee payer with ``deal:<id>``
    in its memo: it never stands in for a movement (which is sent and
    executes on chain), nor does one naming an id the log does not know
    stop settlement, whether the lookup meets it in the fee payer's history
    or an operator listed it as acknowledged (a typo, or talked into it)."""
    rig = SettlementRig(sqlite_store(tmp_path), tmp_path)
    try:
        payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
        await rig.settle()
        (waiting,) = _transfers(rig, payer, payee, 1)
        forged = {_stranger_memo(rig, waiting), _stranger_memo(rig, uuid4())}
        rig = await _restart(rig, acknowledged=frozenset(
            forged if listed == "acknowledged" else ()))
        await rig.settle()
        assert rig.transfer(waiting).settlement_status == SETTLED
        assert rig.transfer(waiting).signature not in forged
        assert (await _carried(rig))[waiting] == 1
        await rig.assert_chain_matches_ledger()
    finally:
        await rig.close()


async def test_a_lost_command_sent_again_while_the_settler_steps_is_not_sent_twice(
    tmp_path: Path,
) -> None:
    """The client's retry of a lost (acknowledged) command can be committed
    at any moment, also between the settler's look at what it watches and
    its choice of what to sign (on PostgreSQL the writer commits the
    settlement rows with the log; on SQLite ``serve`` folds them as it
    goes): it is still settled by the acknowledged transaction, never
    executed on chain a second time."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        rig, (payer, payee, lost, signature) = await _lost_and_acknowledged(rig, snapshot)
        looked = rig.process.lookup.before_sending
        sent_again: list[UUID] = []

        async def retried_meanwhile() -> bool:
            may_send = await looked()
            if not sent_again:
                _send_again(rig, lost, payer, payee, 1)
                sent_again.append(lost)
                rig.fold.catch_up()
            return may_send

        rig.process.lookup.before_sending = retried_meanwhile  # type: ignore[method-assign]
        await rig.settle()
        assert rig.transfer(lost).signature == signature
        assert (await _carried(rig))[lost] == 1
    finally:
        await rig.close()


async def test_a_lost_command_sent_again_with_another_amount_is_not_settled_by_the_landed_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """After a restore and the acknowledgement, a client sends a lost
    command again under its id but moving 30 DEAL where the landed
    transaction moved 3: that transaction did not move what the log's
    movement does, so it is not recorded as its settlement; the movement is
    signed as a new one (the landed 3 DEAL stays a balance finding)."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        rig, (payer, payee, lost, signature) = await _lost_and_acknowledged(rig, snapshot, deal=3)
        caplog.set_level("WARNING", logger="application.settlement.chain_lookup")
        _send_again(rig, lost, payer, payee, 30)
        await rig.settle()
        assert rig.transfer(lost).settlement_status == SETTLED
        resent = rig.transfer(lost).signature
        assert resent is not None and resent != signature
        assert "sent as new movements" in caplog.text
        landed = await rig.chain.transaction(resent)
        assert landed is not None
        assert landed.token_deltas[rig.chain.token_account_address(payee)] == 30 * DEAL
    finally:
        await rig.close()


async def _lost_and_acknowledged(rig: SettlementRig, snapshot: StoreSnapshot, *, deal: int = 1
                                 ) -> tuple[SettlementRig, tuple[UUID, UUID, UUID, str]]:
    """A movement of ``deal`` DEAL settled after the snapshot, lost by its
    restore, its signature acknowledged and the settler started again (its
    lookup now watches the lost movement): the rig, then payer, payee, the
    lost movement and the signature that carried it."""
    payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
    await rig.settle()
    rig = await _restart(rig, while_stopped=snapshot.take)
    lost = uuid4()
    rig.execute(c.TransferFunds(lost, payer, payee, deal * DEAL))
    await rig.settle()
    signature = rig.transfer(lost).signature
    assert signature is not None
    rig = await _restart(rig, while_stopped=snapshot.restore)
    rig = await _restart(rig, acknowledged=frozenset({signature}))
    await rig.settle()
    return rig, (payer, payee, lost, signature)


async def _restored_after(rig: SettlementRig, snapshot: StoreSnapshot,
                          lost: Callable[[SettlementRig], None],
                          again: Callable[[SettlementRig], None]) -> tuple[SettlementRig, str]:
    """The store snapshot; ``lost`` recorded and settled; the snapshot
    restored; ``again`` recorded (a client sending the lost commands again,
    differently); the settler restarted. The rig, and the one signature
    that carried what was lost."""
    rig = await _restart(rig, while_stopped=snapshot.take)
    before = set(await rig.chain.fee_payer_signatures())
    lost(rig)
    await rig.settle()
    (signature,) = set(await rig.chain.fee_payer_signatures()) - before
    rig = await _restart(rig, while_stopped=snapshot.restore)
    again(rig)
    return await _restart(rig), signature


async def _stops_naming(rig: SettlementRig, raised: CollectedAlerts, signature: str,
                        transfer_ids: list[UUID]) -> None:
    """The settler stops before sending anything, an alert naming the
    landed transaction; the movements stay queued."""
    with pytest.raises(ChainAheadOfLog) as stopped:
        await rig.step()
    for named in (signature, *map(str, transfer_ids)):
        assert named in str(stopped.value)
    assert "with another body" in str(stopped.value)
    (alert,) = raised.of(AlertKind.CHAIN_AHEAD_OF_LOG)
    assert alert.fields["signatures"] == signature
    with pytest.raises(ChainAheadOfLog):  # nothing goes on until an operator resolves it
        await rig.step()
    for transfer_id in transfer_ids:
        assert rig.transfer(transfer_id).settlement_status == SETTLEMENT_QUEUED


@pytest.mark.parametrize("chain_kind", ["litesvm", "rpc"])
async def test_a_withdrawal_sent_again_to_another_wallet_is_not_settled_by_the_landed_one(
    store: StoreConfig, tmp_path: Path, chain_kind: str, raised: CollectedAlerts,
) -> None:
    """A withdrawal to wallet A settled after the snapshot; restored, the
    client sends it again under its id to wallet B (also connected): the
    landed transaction paid A, so it does not settle the withdrawal to B
    (the log would say B got it), nor is the withdrawal sent again (A
    would be paid twice): settlement stops naming it."""
    rig = SettlementRig(store, tmp_path, chain_kind=chain_kind)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        account = rig.open_account(funded=10 * DEAL)
        first, second = str(Keypair().pubkey()), str(Keypair().pubkey())
        for wallet in (first, second):
            rig.execute(c.ConnectWallet(account, wallet))
        await rig.settle()
        withdrawal = uuid4()
        rig, signature = await _restored_after(
            rig, snapshot, lambda r: r.execute(c.Withdraw(withdrawal, account, 4 * DEAL, first)),
            lambda r: r.execute(c.Withdraw(withdrawal, account, 4 * DEAL, second)))

        await _stops_naming(rig, raised, signature, [withdrawal])

        assert _wallet_balance(rig, first) == 4 * DEAL
        assert _wallet_balance(rig, second) is None
        assert (await _carried(rig))[withdrawal] == 1
        assert rig.transfer(withdrawal).signature is None
    finally:
        await rig.close()


@pytest.mark.parametrize("chain_kind", ["litesvm", "rpc"])
async def test_a_transfer_sent_again_with_another_amount_stops_settlement(
    tmp_path: Path, chain_kind: str, raised: CollectedAlerts,
) -> None:
    """Restored, a lost transfer of 3 DEAL comes again under its id moving
    30: the landed 3 does not settle it, and it is not sent (it executed
    once already): settlement stops naming it."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path, chain_kind=chain_kind)
    snapshot = StoreSnapshot(store, tmp_path)
    try:
        payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
        await rig.settle()
        moved = uuid4()
        rig, signature = await _restored_after(
            rig, snapshot, _transfers_of([moved], payer, payee, 3),
            _transfers_of([moved], payer, payee, 30))

        await _stops_naming(rig, raised, signature, [moved])

        assert (await _carried(rig))[moved] == 1
        assert await rig.chain_balance(payee) == 3 * DEAL
    finally:
        await rig.close()


def _transfers_of(moved: list[UUID], payer: UUID, payee: UUID, *deals: int
                  ) -> Callable[[SettlementRig], None]:
    """Record transfers under ``moved``'s first ids, of ``deals`` DEAL each."""
    def record(rig: SettlementRig) -> None:
        for transfer_id, deal in zip(moved, deals, strict=False):
            rig.execute(c.TransferFunds(transfer_id, payer, payee, deal * DEAL))
    return record


async def _netted_then_restored(rig: SettlementRig, snapshot: StoreSnapshot, *again: int
                                ) -> tuple[SettlementRig, str, list[UUID], UUID]:
    """Transfers of 1 and 2 DEAL between two accounts settled as one netted
    transfer after the snapshot; restored, ``again`` comes (the first
    ones' ids, those amounts). The rig, the netted signature, the two ids
    and the payee."""
    payer, payee = rig.open_account(funded=100 * DEAL), rig.open_account()
    await rig.settle()
    moved = [uuid4(), uuid4()]
    rig, signature = await _restored_after(rig, snapshot, _transfers_of(moved, payer, payee, 1, 2),
                                           _transfers_of(moved, payer, payee, *again))
    landed = await rig.chain.transaction(signature)
    assert landed is not None and len(landed.token_transfers) == 1  # netted
    return rig, signature, moved, payee


async def test_a_netted_transaction_sent_again_with_another_amount_stops_settlement(
    tmp_path: Path, raised: CollectedAlerts,
) -> None:
    """Both netted transfers come again, one with another amount: the sum
    differs, so neither is settled by the netted transfer nor sent."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path, netting_window_s=0.0)
    try:
        rig, signature, moved, payee = await _netted_then_restored(
            rig, StoreSnapshot(store, tmp_path), 1, 5)

        await _stops_naming(rig, raised, signature, moved)

        carried = await _carried(rig)
        assert carried[moved[0]] == carried[moved[1]] == 1
        assert await rig.chain_balance(payee) == 3 * DEAL
    finally:
        await rig.close()


async def test_a_netted_transaction_naming_lost_movements_settles_none_it_cannot_check(
    tmp_path: Path,
) -> None:
    """Only the first netted transfer comes again, with another amount:
    with the other unknown to the log, the netted sum cannot tell what the
    first moved, so it is not recorded settled by it (the chain is ahead of
    the log: named, nothing sent) until an operator acknowledges."""
    store = sqlite_store(tmp_path)
    rig = SettlementRig(store, tmp_path, netting_window_s=0.0)
    try:
        rig, _, moved, _ = await _netted_then_restored(rig, StoreSnapshot(store, tmp_path), 2)

        with pytest.raises(ChainAheadOfLog) as stopped:
            await rig.step()
        assert f"{moved[0]} is in the log with another body (what it moved" in str(stopped.value)
        assert f"{moved[1]} unknown to the log" in str(stopped.value)
        assert rig.transfer(moved[0]).settlement_status == SETTLEMENT_QUEUED
        assert (await _carried(rig))[moved[0]] == 1
    finally:
        await rig.close()


def _wallet_balance(rig: SettlementRig, wallet: str) -> int | None:
    found = rig.embedded.get_account(Pubkey.from_string(
        rig.chain.wallet_token_account_address(wallet)))
    return None if found is None else tx.decode_token_account(bytes(found.data)).amount
