"""A ``deals-ledger settle`` process anchoring the log, killed with SIGKILL
several times at whatever step it was in and started again: every anchor
the log records ends up confirmed, each sequence is on chain exactly once,
and the chain holds no anchor the log does not know.

The waits are for states, each up to one generous deadline for the whole
test (on a busy 2-core machine a settler takes tens of seconds to start),
never for a time: how fast the settler gets there is not what is tested."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from application import commands as c
from application.eventlog.decoder import EventDecoder
from application.eventlog.merkle_log import LogFrontier
from application.settlement.anchor_audit import anchors_on_chain, run_anchor_audit
from application.settlement.store import QUEUED, SETTLED, SETTLEMENT_FILE_NAME, SUBMITTED
from application.write.event_store import LedgerApplication
from domain.amounts import UNITS_PER_DEAL
from domain.anchor import Anchor, anchor_id
from domain.system import TREASURY_ID
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from tests.support.ledgers import LedgerHarness
from tests.support.stores import sqlite_store

KILLS = 3
STATES_WAIT_S = 900.0
"""For every state the test waits for, together: generous on purpose."""

pytestmark = pytest.mark.timeout(STATES_WAIT_S + 300)


def _settler(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DEALS_DATA_DIR": str(data_dir), "DEALS_ANCHOR_EVERY_EVENTS": "1",
           "DEALS_SETTLEMENT_POLL_INTERVAL_S": "0.01",
           # two movements a step, one step at a time: enough steps (each
           # followed by an anchor) to be killed at different moments
           "DEALS_SETTLEMENT_BATCH": "2", "DEALS_SETTLEMENT_IN_FLIGHT": "1"}
    for name in ("DEALS_DATABASE_URL", "DEALS_SOLANA_RPC_URL", "DEALS_ANCHORING"):
        env.pop(name, None)
    script = Path(sys.executable).parent / "deals-ledger"
    return subprocess.Popen(  # noqa: S603 - our own console script
        [str(script), "settle"], env=env, cwd=data_dir.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _anchors_recorded(tmp_path: Path) -> list[Anchor]:
    """Read-only, from the log (no writer: the settler owns writing)."""
    app = LedgerApplication(sqlite_store(tmp_path).env)
    try:
        found: list[Anchor] = []
        while isinstance(anchor := app.load(anchor_id(len(found) + 1)), Anchor):
            found.append(anchor)
        return found
    finally:
        app.close()


def _anchors_at_least(tmp_path: Path, count: int) -> bool:
    return len(_anchors_recorded(tmp_path)) >= count


def _settling_done(tmp_path: Path, transfer_ids: list[UUID]) -> bool:
    """Every transfer settled as the log says, and nothing left waiting in
    the settler's store (the movements the ledger wrote before them too).
    Only after this does the settler write nothing but anchor steps."""
    app = LedgerApplication(sqlite_store(tmp_path).env)
    try:
        if not all(app.transfer(transfer_id).settlement_status == SETTLED
                   for transfer_id in transfer_ids):
            return False
    finally:
        app.close()
    path = sqlite_store(tmp_path).settings.data_dir / SETTLEMENT_FILE_NAME
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute("SELECT COUNT(*) FROM settlement_movements WHERE status IN (?, ?)",
                         (QUEUED, SUBMITTED)).fetchone()
    return int(row[0]) == 0


def _anchoring_done(tmp_path: Path, transfer_ids: list[UUID]) -> bool:
    """Quiescence: settling is over (until then every step writes events,
    after which a new anchor is recorded, write-ahead, not yet on chain,
    at any moment: a settler stopped then leaves it for the next one to
    resolve), every anchor is confirmed and the last one covers every event
    that is not an anchor step. Settling is checked first: once over it
    stays over, so what the anchors say after it is final."""
    if not _settling_done(tmp_path, transfer_ids):
        return False
    anchors = _anchors_recorded(tmp_path)
    if not anchors or not all(anchor.confirmed for anchor in anchors):
        return False
    app = LedgerApplication(sqlite_store(tmp_path).env)
    try:
        frontier = LogFrontier(app.event_log)
        frontier.catch_up()
        return frontier.last_unanchored_kind_position <= anchors[-1].position
    finally:
        app.close()


def _wait(condition: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll for a state until ``deadline`` (monotonic)."""
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_settler_killed_while_anchoring_neither_loses_nor_duplicates_anchors(
    tmp_path: Path,
) -> None:
    store = sqlite_store(tmp_path)
    data_dir = store.settings.data_dir
    ledger = LedgerHarness(store.env)
    account = ledger.open_account()
    transfer_ids = [uuid4() for _ in range(40)]
    for transfer_id in transfer_ids:
        ledger.execute(c.TransferFunds(transfer_id, TREASURY_ID, account, UNITS_PER_DEAL))
    ledger.close()
    deadline = time.monotonic() + STATES_WAIT_S

    for kill in range(KILLS):
        settler = _settler(data_dir)
        try:
            wanted = kill + 2
            _wait(partial(_anchors_at_least, tmp_path, wanted), deadline,
                  f"{wanted} anchors recorded")
            time.sleep(0.01 * kill)  # a different moment of the step each time
        finally:
            settler.send_signal(signal.SIGKILL)
            settler.wait(10)

    settler = _settler(data_dir)
    try:
        _wait(lambda: _anchoring_done(tmp_path, transfer_ids), deadline,
              "every transfer settled, every recorded anchor confirmed and the last one "
              "covering the log")
    finally:
        settler.send_signal(signal.SIGTERM)
        settler.wait(30)

    asyncio.run(_assert_chain_agrees(tmp_path, data_dir))


async def _assert_chain_agrees(tmp_path: Path, data_dir: Path) -> None:
    ledger = LedgerHarness(sqlite_store(tmp_path).env, genesis=False)
    chain = LiteSvmChain(EmbeddedSolana(data_dir / "chain"), load_custody_keypair(None, data_dir))
    try:
        recorded = _anchors_recorded(tmp_path)
        on_chain = await anchors_on_chain(chain)
        assert [a.memo.sequence for a in on_chain] == [a.sequence for a in recorded]
        assert [a.signature for a in on_chain] == [a.signature for a in recorded]
        audit = await run_anchor_audit(ledger.app.event_log, EventDecoder(ledger.app.mapper),
                                       chain)
        assert audit.ok, audit.findings
    finally:
        await chain.close()
        ledger.close()
