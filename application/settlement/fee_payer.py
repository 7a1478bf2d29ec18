"""The fee payer's SOL: read, shown, alerted on, and guarding settlement.

Every settlement transaction is paid by the fee payer: its fee, and the rent
of the token accounts it creates. When the fee payer cannot pay, the chain
refuses the transaction; the movements are not at fault, and nothing may
fail or be compensated for it. So before signing anything new the settler
asks ``FeePayerWatch.transactions_affordable``: with less than one
transaction's worst case (``FeePayerFunds.needed_lamports``) it raises
``FeePayerUnfundedError``, which pauses the settler as a chain outage does
(``/ready``'s ``last_error`` names the fee payer and the shortfall; the
worker retries with its backoff, or at the next command) while submissions
already in flight are still resent and polled. Funded again, the next step
signs as before: nothing to resume by hand.

Each reading sets the ``deals_ledger_fee_payer_lamports`` gauge, alerts
``fee_payer_low`` when it first falls below the alert threshold
(``DEALS_FEE_PAYER_MIN_LAMPORTS``) and again when settlement pauses, and is
written to the settlement store's meta (on a change of state, else at most
every ``RECORD_INTERVAL_S``) so ``/ready`` in any process reports it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from application.alerts import AlertKind, raise_alert
from application.settlement import metrics
from application.settlement.chain_port import ChainPort, FeePayerFunds, FeePayerUnfundedError
from application.settlement.store import FEE_PAYER_ROTATION_META

logger = logging.getLogger(__name__)

MIN_LAMPORTS_DEFAULT = 1_000_000_000
"""1 SOL: about 200,000 transactions' base fees, or the rent of about 490
new token accounts, the dearer part (each new ledger account's first
movement creates one). Far above the pause (about 0.009 SOL, one worst-case
transaction), so the alert leaves days to top up at a moderate pace."""


def key_fingerprint(address: str) -> int:
    """A public key (base58) as a settlement_meta value: the first 7 bytes
    of its SHA-256, a positive BIGINT. Told apart by it, two keys never
    are by chance (2^-56), and no secret goes into it."""
    return int.from_bytes(hashlib.sha256(address.encode()).digest()[:7], "big")


def rotated_fee_payer_problem(store: MetaStore, address: str) -> str | None:
    """Why a settler paying with ``address`` must not start: ``custody
    rotate fee-payer`` moved the fee payer to another key (the operator
    was told to configure it); None when it did not, or to this one."""
    rotated = store.meta(FEE_PAYER_ROTATION_META)
    if not rotated or rotated == key_fingerprint(address):
        return None
    return (f"the configured fee payer {address} is not the key `deals-ledger custody rotate "
            "fee-payer` moved the fee payer to: set DEALS_FEE_PAYER_KEYPAIR to that key's file "
            "(or run the rotation again with --new-keypair naming this key's file)")


IDLE_READ_INTERVAL_S = 30.0
"""While nothing waits, the balance is read this often (gauge and alert)."""
RECORD_INTERVAL_S = 5.0
ALERT_KEY_LOW = "fee-payer-low"
ALERT_KEY_PAUSED = "fee-payer-paused"

META_LAMPORTS = "fee_payer_lamports"
META_NEEDED = "fee_payer_needed_lamports"
META_ALERT_BELOW = "fee_payer_alert_below_lamports"
META_READ_AT = "fee_payer_read_at"
"""Unix seconds of the reading; 0 (absent): never read."""


class MetaStore(Protocol):
    """The settlement store's small integer table, shared by every process."""

    def meta(self, name: str) -> int: ...

    def set_meta(self, name: str, value: int) -> None: ...


@dataclass(frozen=True)
class FeePayerReading:
    funds: FeePayerFunds
    alert_below_lamports: int
    read_at: float

    @property
    def low(self) -> bool:
        return self.funds.lamports < self.alert_below_lamports

    @property
    def paused(self) -> bool:
        return self.funds.transactions_affordable == 0

    def shortfall(self) -> str:
        """Why settlement pauses, for the log, the alert and ``/ready``."""
        funds = self.funds
        return (f"the fee payer {funds.address} holds {funds.lamports} lamports, less than the "
                f"{funds.needed_lamports} one more transaction may need (its fees and the rent "
                "of the token accounts it creates, keeping the fee payer rent-exempt); "
                "nothing new is signed until it is funded, then settlement resumes by itself")


class FeePayerWatch:
    """Reads the fee payer's funds through the chain port for one settler.

    ``store``: where the reading is written for other processes (None: kept
    here only); ``clock``: Unix time (tests)."""

    def __init__(self, chain: ChainPort, *, alert_below_lamports: int = MIN_LAMPORTS_DEFAULT,
                 store: MetaStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.chain = chain
        self.alert_below_lamports = alert_below_lamports
        self.store = store
        self._clock = clock
        self.latest: FeePayerReading | None = None
        self._recorded: tuple[bool, bool, float] | None = None  # low, paused, when

    async def transactions_affordable(self, wanted: int) -> int:
        """How many of ``wanted`` new transactions the fee payer pays for,
        at least one; else ``FeePayerUnfundedError`` (nothing to sign)."""
        reading = await self.read()
        if reading.paused:
            raise FeePayerUnfundedError(reading.shortfall())
        return min(wanted, reading.funds.transactions_affordable)

    async def read_if_due(self) -> None:
        """Read when the last reading is older than ``IDLE_READ_INTERVAL_S``."""
        latest = self.latest
        if latest is None or self._clock() - latest.read_at >= IDLE_READ_INTERVAL_S:
            await self.read()

    async def read(self) -> FeePayerReading:
        reading = FeePayerReading(await self.chain.fee_payer_funds(), self.alert_below_lamports,
                                  self._clock())
        before, self.latest = self.latest, reading
        metrics.FEE_PAYER_LAMPORTS.set(reading.funds.lamports)
        metrics.FEE_PAYER_NEEDED_LAMPORTS.set(reading.funds.needed_lamports)
        _tell(before, reading)
        self._record(reading)
        return reading

    def _record(self, reading: FeePayerReading) -> None:
        if self.store is None:
            return
        recorded = self._recorded
        if (recorded is not None and recorded[:2] == (reading.low, reading.paused)
                and reading.read_at - recorded[2] < RECORD_INTERVAL_S):
            return
        try:
            for name, value in ((META_LAMPORTS, reading.funds.lamports),
                                (META_NEEDED, reading.funds.needed_lamports),
                                (META_ALERT_BELOW, reading.alert_below_lamports),
                                (META_READ_AT, int(reading.read_at))):
                self.store.set_meta(name, value)
        except Exception as error:  # the store down: /ready says so by its status
            logger.warning("fee payer reading not recorded (%s)", type(error).__name__)
            return
        self._recorded = (reading.low, reading.paused, reading.read_at)


def _tell(before: FeePayerReading | None, now: FeePayerReading) -> None:
    """Alert when the balance falls below the threshold, and when settlement
    pauses; log when it is funded again. Once per change of state."""
    funds = now.funds
    if now.low and (before is None or not before.low):
        raise_alert(AlertKind.FEE_PAYER_LOW, "the fee payer's SOL is below the alert threshold",
                    dedup_key=ALERT_KEY_LOW, address=funds.address, lamports=funds.lamports,
                    alert_below_lamports=now.alert_below_lamports,
                    needed_lamports=funds.needed_lamports)
    if now.paused and (before is None or not before.paused):
        raise_alert(AlertKind.FEE_PAYER_LOW, "settlement paused: " + now.shortfall(),
                    dedup_key=ALERT_KEY_PAUSED, address=funds.address, lamports=funds.lamports,
                    needed_lamports=funds.needed_lamports, paused=True)
    if before is not None and before.paused and not now.paused:
        logger.info("the fee payer %s holds %d lamports again: settlement resumes",
                    funds.address, funds.lamports)


def recorded_state(store: MetaStore) -> dict[str, Any] | None:
    """The latest reading any settler recorded, as ``/ready`` shows it
    (``settlement.fee_payer``); None when none was ever recorded."""
    read_at = store.meta(META_READ_AT)
    if read_at == 0:
        return None
    lamports, needed = store.meta(META_LAMPORTS), store.meta(META_NEEDED)
    alert_below = store.meta(META_ALERT_BELOW)
    return {
        "lamports": lamports, "needed_lamports": needed, "alert_below_lamports": alert_below,
        "low": lamports < alert_below, "paused": lamports < needed,
        "read_at": datetime.fromtimestamp(read_at, UTC),
    }
