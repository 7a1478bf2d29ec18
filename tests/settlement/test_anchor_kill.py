"""A ``deals-ledger settle`` process anchoring the log, killed with SIGKILL
several times at whatever step it was in and started again: every anchor
the log records ends up confirmed, each sequence is on chain exactly once,
and the chain holds no anchor the log does not know."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

from application import commands as c
from application.eventlog.decoder import EventDecoder
from application.eventlog.merkle_log import LogFrontier
from application.settlement.anchor_audit import anchors_on_chain, run_anchor_audit
from domain.amounts import UNITS_PER_DEAL
from domain.anchor import Anchor, anchor_id
from domain.system import TREASURY_ID
from interface.chain.custody import load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from tests.support.ledgers import LedgerHarness
from tests.support.stores import sqlite_store

KILLS = 3


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
    ledger = LedgerHarness(sqlite_store(tmp_path).env, genesis=False)
    try:
        found = []
        while isinstance(anchor := ledger.app.load(anchor_id(len(found) + 1)), Anchor):
            found.append(anchor)
        return found
    finally:
        ledger.close()


def _anchoring_done(tmp_path: Path) -> bool:
    """Quiescence: every anchor confirmed and the last one covers every
    event that is not an anchor step. Before that, settling the transfers
    keeps writing events, so a new anchor may be recorded (write-ahead, not
    yet on chain) at any moment and the settler must not be stopped."""
    anchors = _anchors_recorded(tmp_path)
    if not anchors or not all(anchor.confirmed for anchor in anchors):
        return False
    ledger = LedgerHarness(sqlite_store(tmp_path).env, genesis=False)
    try:
        frontier = LogFrontier(ledger.app.event_log)
        frontier.catch_up()
        return frontier.last_unanchored_kind_position <= anchors[-1].position
    finally:
        ledger.close()


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_settler_killed_while_anchoring_neither_loses_nor_duplicates_anchors(
    tmp_path: Path,
) -> None:
    store = sqlite_store(tmp_path)
    data_dir = store.settings.data_dir
    ledger = LedgerHarness(store.env)
    account = ledger.open_account()
    for _ in range(40):
        ledger.execute(c.TransferFunds(uuid4(), TREASURY_ID, account, UNITS_PER_DEAL))
    ledger.close()

    for kill in range(KILLS):
        settler = _settler(data_dir)
        try:
            wanted = kill + 2
            _wait(lambda wanted=wanted: len(_anchors_recorded(tmp_path)) >= wanted, 90,
                  f"{wanted} anchors recorded")
            time.sleep(0.01 * kill)  # a different moment of the step each time
        finally:
            settler.send_signal(signal.SIGKILL)
            settler.wait(10)

    settler = _settler(data_dir)
    try:
        _wait(lambda: _anchoring_done(tmp_path), 90,
              "every recorded anchor confirmed and the last one covering the log")
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
