"""A ledger, its settlement store and a chain, wired as a process wires them,
with hooks to stop the settlement process anywhere and restart it from disk.

``SettlementRig`` runs on the embedded chain (LiteSvmChain) or, with
``chain_kind="rpc"``, on RpcChain through the tests' JSON-RPC server backed
by the same kind of embedded chain."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from solders.pubkey import Pubkey

from application import commands as c
from application.retry import RetryPolicy
from application.settlement.chain_port import ChainPort
from application.settlement.fold import SettlementFold
from application.settlement.process import (
    BLOCKHASH_WAIT_S_MAX,
    SLOT_S,
    SettlementConfig,
    SettlementHooks,
    SettlementProcess,
)
from application.settlement.reconciler import Reconciler, ReconciliationConfig, ReconciliationReport
from application.settlement.store import open_settlement_store
from application.write.event_store import LedgerApplication
from domain.amounts import UNITS_PER_DEAL
from domain.system import ISSUANCE_ID, REWARDS_ID, TREASURY_ID
from domain.transfer import Transfer
from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey, load_custody_keypair
from interface.chain.embedded import EmbeddedSolana
from interface.chain.litesvm_adapter import LiteSvmChain
from interface.chain.rpc_adapter import RpcChain
from tests.chain.rpc_server import SolanaRpcServer
from tests.support.ledgers import LedgerHarness
from tests.support.stores import StoreConfig

DEAL = UNITS_PER_DEAL
FAST_RETRY = RetryPolicy(attempts_max=10, delay_s_base=0.001, delay_s_max=0.02)
FEE_PAYER_LAMPORTS = 1_000 * 10**9
RPC_TIMEOUT_S = 2.0


class SimulatedCrash(BaseException):
    """Raised by a hook: the settlement process stops right there."""


class SettlementRig:
    def __init__(
        self, store: StoreConfig, tmp_path: Path, *, chain_kind: str = "litesvm",
        batch_movements: int | None = None, rpc_timeout_s: float = RPC_TIMEOUT_S,
        app: LedgerApplication | None = None, netting_window_s: float | None = None,
        clock: Callable[[], float] = time.monotonic, faucet: bool = True,
    ) -> None:
        self.faucet = faucet
        """The embedded chain tops the fee payer up before each send."""
        self.store_config = store
        self.chain_kind = chain_kind
        self.rpc_timeout_s = rpc_timeout_s
        self.ledger = LedgerHarness(store.env, app=app)
        self.store = open_settlement_store(self.ledger.app.recorder)
        self.custody: CustodyKey = load_custody_keypair(None, tmp_path / "keys")
        self.chain_dir = tmp_path / "chain"
        self.hooks = SettlementHooks()
        self.config = SettlementConfig(
            batch_movements=batch_movements, poll_interval_s=0.005, retry=FAST_RETRY,
            netting_window_s=netting_window_s,
        )
        self.clock = clock
        self.while_chain_waits: Callable[[], None] | None = None
        """Called each time the settler lets the chain's blocks go by (it
        waits for blockhash expiry), before they do: what lands meanwhile."""
        self.server: SolanaRpcServer | None = None
        self.chain: ChainPort = self._open_chain()
        self.process = self._new_process()
        self.accounts: list[UUID] = [TREASURY_ID, REWARDS_ID]

    # --- the pieces ----------------------------------------------------------

    def _open_chain(self) -> ChainPort:
        self.embedded = EmbeddedSolana(self.chain_dir)
        if self.chain_kind == "litesvm":
            return LiteSvmChain(self.embedded, self.custody, faucet=self.faucet)
        self.embedded.fund(self.custody.pubkey, FEE_PAYER_LAMPORTS)
        self.server = SolanaRpcServer(self.embedded).start()
        return RpcChain(self.server.url, self.custody, timeout_s=self.rpc_timeout_s,
                        transport_retries_max=0)

    def _new_process(self) -> SettlementProcess:
        self.fold = SettlementFold(self.ledger.app, self.store)
        return SettlementProcess(
            writer=self.ledger.writer, fold=self.fold, chain=self.chain, config=self.config,
            hooks=self.hooks, clock=self.clock, chain_wait=self._chain_time,
        )

    async def _chain_time(self, seconds: float) -> None:
        """``seconds`` of a cluster's blocks go by: the embedded chain behind
        the test server, whose blocks move only when a transaction lands,
        moves on as many slots (time injected, never slept)."""
        if self.while_chain_waits is not None:
            self.while_chain_waits()
        self.embedded.advance_slots(max(1, math.ceil(seconds / SLOT_S)))

    async def restart(self) -> None:
        """As after a crash: a new chain adapter over the chain's files, a
        new fold and a new process; only the logs and the chain remain."""
        await self._close_chain()
        self.chain = self._open_chain()
        self.process = self._new_process()

    async def _close_chain(self) -> None:
        await self.chain.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.chain_kind == "rpc":
            self.embedded.close()

    async def close(self) -> None:
        await self._close_chain()
        self.store.close()
        self.ledger.close()

    # --- acting ---------------------------------------------------------------

    def execute(self, command: c.Command):
        return self.ledger.execute(command)

    def open_account(self, funded: int = 0) -> UUID:
        account_id = self.ledger.open_account()
        self.accounts.append(account_id)
        if funded:
            self.execute(c.TransferFunds(uuid4(), TREASURY_ID, account_id, funded, "funding"))
        return account_id

    async def step(self) -> bool:
        """One step of the process that does something, after the chain's
        blocks went by for any blockhash wait (the JSON-RPC chain waits at a
        start); False: nothing to do."""
        while not await self.process.step():
            wait = self.process.lookup.wait
            if wait is None or wait.passed:
                return False
            await self._chain_time(BLOCKHASH_WAIT_S_MAX)
        return True

    async def settle(self) -> int:
        await self.process.prepare()
        return await self.process.run_until_idle(10_000)

    async def reconcile(self, *, full: bool = False, accounts_page: int = 500
                        ) -> ReconciliationReport:
        reconciler = Reconciler(
            writer=self.ledger.writer, fold=self.fold, chain=self.chain,
            config=ReconciliationConfig(accounts_page=accounts_page, retry=FAST_RETRY),
        )
        return await reconciler.run(full=full)

    # --- looking -----------------------------------------------------------------

    def transfer(self, transfer_id: UUID) -> Transfer:
        return self.ledger.app.transfer(transfer_id)

    def address(self, account_id: UUID) -> Pubkey:
        return Pubkey.from_string(self.chain.token_account_address(account_id))

    async def chain_balance(self, account_id: UUID) -> int:
        return await self.chain.token_balance(account_id) or 0

    def chain_supply(self) -> int:
        mint = self.embedded.get_account(tx.mint_address(self.custody.pubkey))
        assert mint is not None
        return tx.mint_supply(bytes(mint.data))

    async def assert_chain_matches_ledger(self, accounts: Iterable[UUID] | None = None) -> None:
        for account_id in accounts or self.accounts:
            assert await self.chain_balance(account_id) == self.ledger.balance(account_id), (
                f"account {account_id}"
            )
        assert self.chain_supply() == -self.ledger.balance(ISSUANCE_ID)

    async def landed_transfer_ids(self, accounts: Iterable[UUID] | None = None
                                  ) -> dict[UUID, list[str]]:
        """Every transfer named by the memo of a successful transaction on
        these accounts, with the signatures that carried it."""
        carried: dict[UUID, list[str]] = {}
        seen: set[str] = set()
        for account_id in accounts or self.accounts:
            before = None
            while True:
                page = await self.chain.signatures_for_account(account_id, before=before)
                if not page:
                    break
                for signature in page:
                    if signature in seen:
                        continue
                    seen.add(signature)
                    landed = await self.chain.transaction(signature)
                    assert landed is not None
                    if landed.error is None:
                        for transfer_id in landed.memo_transfer_ids:
                            carried.setdefault(transfer_id, []).append(signature)
                before = page[-1]
        return carried

    async def assert_each_settled_once(self, transfer_ids: Iterable[UUID]) -> None:
        carried = await self.landed_transfer_ids()
        for transfer_id in transfer_ids:
            transfer = self.transfer(transfer_id)
            assert transfer.settlement_status == "settled", transfer_id
            assert carried.get(transfer_id) == [transfer.signature], transfer_id


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def rig(store: StoreConfig, tmp_path: Path) -> AsyncIterator[SettlementRig]:
    settlement = SettlementRig(store, tmp_path)
    try:
        yield settlement
    finally:
        await settlement.close()


@pytest.fixture
async def sqlite_rig(tmp_path: Path) -> AsyncIterator[SettlementRig]:
    from tests.support.stores import sqlite_store

    settlement = SettlementRig(sqlite_store(tmp_path), tmp_path)
    try:
        yield settlement
    finally:
        await settlement.close()


@pytest.fixture(params=["litesvm", "rpc"])
async def chain_rig(request: pytest.FixtureRequest, store: StoreConfig, tmp_path: Path
                    ) -> AsyncIterator[SettlementRig]:
    """Genesis settled, on the embedded chain and through the JSON-RPC
    adapter, on each store."""
    settlement = SettlementRig(store, tmp_path, chain_kind=request.param)
    try:
        await settlement.settle()
        yield settlement
    finally:
        await settlement.close()
