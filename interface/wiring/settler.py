"""Settlement wiring, in one place: which chain adapter the settings ask
for, the custody key, and the settlement worker of a ledger process.

``DEALS_SOLANA_RPC_URL`` set -> ``RpcChain`` on that endpoint; unset -> the
embedded ``LiteSvmChain`` whose state lives in ``<data dir>/chain``. The
custody key comes from ``DEALS_CUSTODY_KEYPAIR`` or is created (0600) in the
data dir; it is loaded once and never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from solders.pubkey import Pubkey

from application.eventlog.locks import AdvisoryLock, FileLock, advisory_lock_key, conninfo_of
from application.settlement.anchoring import AnchorConfig, AnchorHooks
from application.settlement.chain_port import ChainPort
from application.settlement.deposit_scan import DepositConfig
from application.settlement.fold import SettlementFold
from application.settlement.lease import Lease
from application.settlement.process import CommandSender, SettlementConfig, SettlementHooks
from application.settlement.reconciler import ReconciliationConfig
from application.settlement.store import open_settlement_store
from application.settlement.worker import SettlementWorker
from application.write.event_store import LedgerApplication
from interface.chain import transactions as tx
from interface.chain.compute_budget import PriorityFees
from interface.chain.custody import (
    CustodyKey,
    CustodyKeys,
    load_custody_keypair,
    load_role_key,
)
from interface.wiring.leaf_witness import leaf_witness
from interface.wiring.settings import Settings

EMBEDDED_CHAIN_DIR = "chain"
LEASE_FILE_NAME = "settlement.lock"


def lease_for(recorder: Any) -> Lease:
    """The settler's lease beside the application's event store: a lock file
    next to the SQLite file, or an advisory lock named after the schema."""
    from eventsourcing.postgres import PostgresApplicationRecorder

    if isinstance(recorder, PostgresApplicationRecorder):
        datastore = recorder.datastore
        key = advisory_lock_key(f"deals-ledger:settlement:{datastore.schema}")
        return AdvisoryLock(conninfo_of(datastore), key, purpose="settlement")
    return FileLock(Path(recorder.datastore.pool.db_name).parent / LEASE_FILE_NAME)


def custody_key(settings: Settings) -> CustodyKey:
    """The custody key: the address base and anchor seed (see CustodyKeys)."""
    return load_custody_keypair(settings.custody_keypair, settings.data_dir)


ROLE_SETTINGS = {
    "fee-payer": ("fee_payer_keypair", "DEALS_FEE_PAYER_KEYPAIR"),
    "owner": ("custody_owner_keypair", "DEALS_CUSTODY_OWNER_KEYPAIR"),
    "mint-authority": ("mint_authority_keypair", "DEALS_MINT_AUTHORITY_KEYPAIR"),
}
"""Each power a key of its own may hold: its Settings field and variable."""


def role_key(settings: Settings, role: str) -> CustodyKey | None:
    """The key of one power (None: the custody key holds it)."""
    return load_role_key(getattr(settings, ROLE_SETTINGS[role][0]), settings.data_dir, role)


def custody_keys(settings: Settings) -> CustodyKeys:
    """Which key holds which power, as the settings and the data dir say."""
    return CustodyKeys(
        custody_key(settings), fee_payer=role_key(settings, "fee-payer"),
        owner=role_key(settings, "owner"), mint_authority=role_key(settings, "mint-authority"),
    )


def mint_address(settings: Settings) -> str:
    """The DEAL mint's address: DEALS_SOLANA_MINT, else derived from the
    custody key (no I/O)."""
    return settings.solana_mint or str(tx.mint_address(custody_key(settings).pubkey))


def custody_address(settings: Settings) -> Pubkey:
    """The address base: the custody key's public key, from which the mint's
    and every token account's address derive (the key file is read once, here)."""
    return custody_key(settings).pubkey


def token_account_address(custody: Pubkey, account_id: UUID) -> str:
    """The account's DEAL token account on chain (derived from the custody
    authority and the account id, no I/O)."""
    return str(tx.token_account_address(custody, account_id))


def configured_mint(settings: Settings) -> Pubkey | None:
    return None if settings.solana_mint is None else Pubkey.from_string(settings.solana_mint)


def anchor_signer(settings: Settings) -> str:
    """The address that co-signs every anchor (derived from the custody key, no I/O)."""
    return str(custody_key(settings).anchor_signer)


def open_chain(settings: Settings, custody: CustodyKeys | None = None) -> ChainPort:
    """A new chain adapter as the settings ask; the caller closes it."""
    from interface.chain.embedded import EmbeddedSolana
    from interface.chain.litesvm_adapter import LiteSvmChain
    from interface.chain.rpc_adapter import RpcChain

    custody = custody or custody_keys(settings)
    if settings.solana_rpc_url:
        return RpcChain(
            settings.solana_rpc_url, custody, commitment=settings.settlement_commitment,
            timeout_s=settings.solana_timeout_s, mint=configured_mint(settings),
            fees=priority_fees(settings),
        )
    return LiteSvmChain(EmbeddedSolana(embedded_chain_dir(settings)), custody,
                        mint=configured_mint(settings), fees=priority_fees(settings))


def priority_fees(settings: Settings) -> PriorityFees:
    """Checked by the settings already (a price over the cap exits 78)."""
    return PriorityFees(settings.priority_fee_micro_lamports, settings.priority_fee_cap_lamports)


def embedded_chain_dir(settings: Settings) -> Path:
    return settings.data_dir / EMBEDDED_CHAIN_DIR


def settlement_config(settings: Settings) -> SettlementConfig:
    return SettlementConfig(
        commitment=settings.settlement_commitment,
        batch_movements=settings.settlement_batch_movements,
        in_flight_max=settings.settlement_in_flight,
        poll_interval_s=settings.settlement_poll_interval_s,
        acknowledged=frozenset(settings.settlement_acknowledged),
        netting_window_s=settings.settlement_netting_window_s,
        fee_payer_min_lamports=settings.fee_payer_min_lamports,
        wallet_account_creations_max=settings.withdrawal_account_creations_max,
    )


def settlement_fold(app: LedgerApplication) -> SettlementFold:
    return SettlementFold(app, open_settlement_store(app.recorder))


def build_settlement_worker(
    settings: Settings,
    app: LedgerApplication,
    writer: CommandSender,
    fold: SettlementFold,
    *,
    hooks: SettlementHooks | None = None,
    anchor_hooks: AnchorHooks | None = None,
) -> SettlementWorker:
    custody = custody_keys(settings)
    return SettlementWorker(
        writer=writer,
        fold=fold,
        lease=lambda: lease_for(app.recorder),
        open_chain=lambda: open_chain(settings, custody),
        chain_is_exclusive=not settings.solana_rpc_url,
        config=settlement_config(settings),
        reconciliation=ReconciliationConfig(),
        reconcile_interval_s=settings.reconcile_interval_s,
        deposits=DepositConfig(commitment=settings.deposit_commitment),
        deposit_scan_interval_s=settings.deposit_scan_interval_s,
        hooks=hooks,
        anchoring=anchor_config(settings),
        anchor_hooks=anchor_hooks,
        witness=leaf_witness(settings.data_dir),
    )


def anchor_config(settings: Settings) -> AnchorConfig | None:
    if not settings.anchoring_enabled:
        return None
    return AnchorConfig(
        every_events=settings.anchor_every_events, every_s=settings.anchor_every_s,
        commitment=settings.settlement_commitment,
        poll_interval_s=settings.settlement_poll_interval_s,
    )
