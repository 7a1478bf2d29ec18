"""All settings in one place, read from DEALS_* environment variables (and
a .env file in the working directory) by pydantic-settings, with embedded
defaults so a fresh machine runs the service with nothing installed but Python.

``Settings(...)`` builds settings from keyword arguments only (tests and
benchmarks), so nothing in the caller's environment leaks into them;
``Settings.from_env()`` reads the environment. Each field names its variable
(``validation_alias``), so a refused value is reported by the name an
operator set, with the values it accepts, and never echoes a secret.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from solders.signature import Signature

from application.settlement.fee_payer import MIN_LAMPORTS_DEFAULT as FEE_PAYER_MIN_LAMPORTS
from application.settlement.wallet_accounts import CREATIONS_MAX_DEFAULT
from application.write.aggregate_cache import AGGREGATES_MAX_DEFAULT
from application.write.writer import BATCH_COMMANDS_MAX_DEFAULT
from domain.amounts import UNITS_PER_DEAL, parse_amount
from domain.errors import LedgerError
from interface.chain.compute_budget import PRIORITY_FEE_CAP_LAMPORTS_DEFAULT, price_problem
from interface.wiring.store_env import postgres_env, sqlite_env

SECRET_FIELDS = frozenset({"database_url", "redis_url", "api_keys", "alert_webhook_url",
                           "alert_webhook_secret"})
"""Never printed, logged or echoed in an error: URLs may carry passwords."""


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
"""What redis-py's ``from_url`` accepts."""

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""An unquoted PostgreSQL identifier that stays as written (no case folding,
no truncation at 63 bytes)."""


WALLET_COOLDOWN_S_DEFAULT = 86_400.0
"""A day, as custodians hold new payout addresses: a key that connects a
wallet it should not (a leaked write key, a phished operator) cannot have
tokens sent to it before the account's owner and the operators have had a
working day to see the connection and disconnect it; a withdrawal cannot be
called back. Tests and the documents' server set 0."""


class SettingsError(ValueError):
    """Settings that cannot run the service: one line per refused variable."""


def _var(default: Any, name: str, *, secret: bool = False, **constraints: Any) -> Any:
    """A field read from the environment variable ``name``."""
    return Field(default, validation_alias=name, repr=not secret, **constraints)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")

    data_dir: Path = _var(Path("./var"), "DEALS_DATA_DIR")
    database_url: str | None = _var(None, "DEALS_DATABASE_URL", secret=True)
    redis_url: str | None = _var(None, "DEALS_REDIS_URL", secret=True)
    solana_rpc_url: str | None = _var(None, "DEALS_SOLANA_RPC_URL")
    solana_mint: str | None = _var(None, "DEALS_SOLANA_MINT")
    """An existing DEAL mint (8 decimals, the custody key its mint authority,
    no supply yet); unset: the mint derived from the custody key, created."""
    custody_keypair: Path | None = _var(None, "DEALS_CUSTODY_KEYPAIR")
    """The custody key: the address base of the mint and every token account
    (never changes) and, unless given their own keys, every other power."""
    fee_payer_keypair: Path | None = _var(None, "DEALS_FEE_PAYER_KEYPAIR")
    """The key that pays every fee and rent; unset: ``fee-payer-keypair.json``
    in the data dir if there, else the custody key."""
    custody_owner_keypair: Path | None = _var(None, "DEALS_CUSTODY_OWNER_KEYPAIR")
    """Owner of every custody token account; unset: ``custody-owner-keypair.json``
    in the data dir if there, else the custody key."""
    mint_authority_keypair: Path | None = _var(None, "DEALS_MINT_AUTHORITY_KEYPAIR")
    """The mint's mint and freeze authority; unset: ``mint-authority-keypair.json``
    in the data dir if there, else the custody key."""
    commit_keys_file: Path | None = _var(None, "DEALS_COMMIT_KEYS_FILE")
    """``key_id:hex`` lines (0600): every commit is sealed with the last key
    and checked with any of them (docs/operations.md, "Commit seals"); unset:
    ``commit-keys`` in the data dir, generated at the first start."""
    commit_seals_from: int = _var(0, "DEALS_COMMIT_SEALS_FROM", ge=0)
    """The log's head when a key file of one's own is first given to a ledger
    that has events (an upgrade); events up to it are read unsealed."""
    api_keys: str | None = _var(None, "DEALS_API_KEYS", secret=True)
    host: str = _var("127.0.0.1", "DEALS_HOST")
    port: int = _var(8000, "DEALS_PORT", ge=0, le=65535)
    batch_commands_max: int = _var(BATCH_COMMANDS_MAX_DEFAULT, "DEALS_MAX_BATCH_COMMANDS", ge=1)
    cached_aggregates_max: int = _var(AGGREGATES_MAX_DEFAULT, "DEALS_MAX_CACHED_AGGREGATES", ge=1)
    postgres_schema: str | None = _var(None, "DEALS_POSTGRES_SCHEMA")
    body_bytes_max: int = _var(4 * 1024 * 1024, "DEALS_MAX_BODY_BYTES", ge=1)
    """Requests with a larger body are refused with 413 before being parsed."""
    rate_limit_per_s: float = _var(500.0, "DEALS_RATE_LIMIT_PER_S", ge=0, allow_inf_nan=False)
    """Sustained requests per second per API key; 0 turns rate limiting off."""
    rate_limit_burst: int = _var(1000, "DEALS_RATE_LIMIT_BURST", ge=1)
    """Requests a key may send at once after being idle (the bucket's size)."""
    redis_prefix: str = _var("deals:", "DEALS_REDIS_PREFIX")
    """Prefix of every Redis key this service writes (rate-limit buckets...)."""
    ready_lag_max: int = _var(10_000, "DEALS_READY_MAX_LAG", ge=0)
    """/ready fails when the read models are more log positions behind than this."""
    shutdown_grace_s: float = _var(30.0, "DEALS_SHUTDOWN_GRACE_S", ge=0, allow_inf_nan=False)
    """On SIGTERM, how long in-flight requests may take before they are cut."""
    # the connection edge (interface.http.edge; README: Security and alerts)
    header_timeout_s: float = _var(10.0, "DEALS_HEADER_TIMEOUT_S", gt=0, allow_inf_nan=False)
    """A request's head (request line and headers) must arrive within this
    long of its first byte (of the connection, for the first request)."""
    body_timeout_s: float = _var(30.0, "DEALS_BODY_TIMEOUT_S", gt=0, allow_inf_nan=False)
    """A request's body must arrive within this long of its head."""
    header_bytes_max: int = _var(16 * 1024, "DEALS_MAX_HEADER_BYTES", gt=0)
    """A larger request head is refused with 431."""
    connections_max: int = _var(1000, "DEALS_MAX_CONNECTIONS", gt=0)
    """Open connections per process (also kept under the open-file limit)."""
    keep_alive_timeout_s: int = _var(5, "DEALS_KEEP_ALIVE_TIMEOUT_S", gt=0)
    """An idle keep-alive connection is closed after this many seconds."""
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = _var((), "DEALS_TRUSTED_PROXIES")
    """Addresses or networks whose X-Forwarded-For / X-Forwarded-Proto are
    believed; from anyone else those headers are ignored."""
    log_format: Literal["text", "json"] = _var("text", "DEALS_LOG_FORMAT")
    """text: one line per record with time, level, logger and request id; json:
    the same as one JSON object per line."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = _var(None, "DEALS_LOG_LEVEL")
    """Unset: warnings from the ledger, start/stop/access lines from uvicorn."""
    projections_enabled: bool = _var(True, "DEALS_PROJECTIONS")
    rebuild_restored_read_models: bool = _var(False, "DEALS_REBUILD_RESTORED_READ_MODELS")
    """Read models of a timeline the event log lost (the log restored without
    them) are rebuilt from the log by the projector; off: /ready answers 503
    naming this setting (a log truncated or altered on purpose looks the
    same, and the rebuild drops the checkpoints that show it)."""
    """Run the projector in this process (off: only ``deals-ledger project`` workers)."""
    # settlement and reconciliation
    settlement_enabled: bool = _var(True, "DEALS_SETTLEMENT")
    settlement_commitment: Literal["processed", "confirmed", "finalized"] = _var(
        "confirmed", "DEALS_SETTLEMENT_COMMITMENT")
    settlement_batch_movements: int | None = _var(None, "DEALS_SETTLEMENT_BATCH", ge=1)
    """At most this many movements a transaction (unset: as many as fit its real size)."""
    settlement_in_flight: int = _var(4, "DEALS_SETTLEMENT_IN_FLIGHT", ge=1)
    """Transactions sent and confirmed together, on disjoint accounts."""
    settlement_poll_interval_s: float = _var(0.4, "DEALS_SETTLEMENT_POLL_INTERVAL_S", gt=0)
    settlement_acknowledged: Annotated[tuple[str, ...], NoDecode] = _var(
        (), "DEALS_SETTLEMENT_ACKNOWLEDGED")
    """Landed signatures an operator has reconciled after a restore: the
    chain being ahead of the log by these no longer stops settlement
    (docs/operations.md, "Restores and failovers")."""
    settlement_netting_window_s: float | None = _var(
        None, "DEALS_SETTLEMENT_NETTING_WINDOW_S", ge=0, allow_inf_nan=False)
    """Unset: netting off. Seconds: transfers between the same two token
    accounts settle as one transfer of their sum, the oldest waiting at most
    this long for others to join (docs/solana.md, "Netting")."""
    solana_timeout_s: float = _var(10.0, "DEALS_SOLANA_TIMEOUT_S", gt=0)
    priority_fee_micro_lamports: int = _var(0, "DEALS_PRIORITY_FEE_MICROLAMPORTS", ge=0)
    """Priority price of settlement transactions, micro-lamports per compute
    unit (0: none, no SetComputeUnitPrice instruction)."""
    priority_fee_cap_lamports: int = _var(PRIORITY_FEE_CAP_LAMPORTS_DEFAULT,
                                          "DEALS_PRIORITY_FEE_CAP_LAMPORTS", ge=0)
    """The most priority fee one transaction may pay, lamports: a price that
    could cost more (at the chain's 1,400,000-unit limit) is refused at start."""
    fee_payer_min_lamports: int = _var(FEE_PAYER_MIN_LAMPORTS, "DEALS_FEE_PAYER_MIN_LAMPORTS", ge=0)
    """Below this many lamports the fee payer's SOL alerts (fee_payer_low)."""
    reconcile_interval_s: float = _var(3600.0, "DEALS_RECONCILE_INTERVAL_S", ge=0)
    deposit_commitment: Literal["processed", "confirmed", "finalized"] = _var(
        "finalized", "DEALS_DEPOSIT_COMMITMENT")
    """A deposit is credited once its transaction reached this commitment."""
    withdrawal_wallet_cooldown_s: float = _var(
        WALLET_COOLDOWN_S_DEFAULT, "DEALS_WITHDRAWAL_WALLET_COOLDOWN_S", ge=0, allow_inf_nan=False)
    """A wallet connected (or connected again) less than this many seconds
    ago receives no withdrawal: 409 wallet_cooling_down (0: at once)."""
    withdrawal_account_creations_max: int = _var(
        CREATIONS_MAX_DEFAULT, "DEALS_WITHDRAWAL_ACCOUNT_CREATIONS_MAX", ge=0)
    """The fee payer creates the associated token account of at most this
    many wallets per ledger account, the first it withdraws to (0: none)."""
    deposit_scan_interval_s: float = _var(
        10.0, "DEALS_DEPOSIT_SCAN_INTERVAL_S", ge=0, allow_inf_nan=False)
    """The settler scans the deposit addresses this often (0: never)."""
    anchoring_enabled: bool = _var(True, "DEALS_ANCHORING")
    """The settler anchors the log's Merkle root on chain (docs/proofs.md)."""
    anchor_every_events: int = _var(10_000, "DEALS_ANCHOR_EVERY_EVENTS", ge=1)
    anchor_every_s: float = _var(300.0, "DEALS_ANCHOR_EVERY_S", gt=0, allow_inf_nan=False)
    # webhooks to subscribers (docs/api.md: Webhooks; docs/operations.md: roles)
    webhooks_enabled: bool = _var(True, "DEALS_WEBHOOKS")
    """Stand by to deliver webhooks here (one process delivers at a time)."""
    webhook_timeout_s: float = _var(5.0, "DEALS_WEBHOOK_TIMEOUT_S", gt=0, allow_inf_nan=False)
    """Per delivery attempt: connect and answer."""
    webhook_backoff_s_max: float = _var(60.0, "DEALS_WEBHOOK_BACKOFF_S_MAX", gt=0,
                                        allow_inf_nan=False)
    """The longest pause between attempts at a failing receiver."""
    # alerts and suspicious activity (README: Security and alerts)
    alert_webhook_url: str | None = _var(None, "DEALS_ALERT_WEBHOOK_URL", secret=True)
    alert_webhook_secret: str | None = _var(None, "DEALS_ALERT_WEBHOOK_SECRET", secret=True)
    alert_cooldown_s: float = _var(60.0, "DEALS_ALERT_COOLDOWN_S", ge=0)
    """The same condition alerts at most once per this many seconds."""
    health_watch_interval_s: float = _var(5.0, "DEALS_HEALTH_WATCH_INTERVAL_S", gt=0)
    projection_stall_s: float = _var(60.0, "DEALS_PROJECTION_STALL_S", gt=0)
    """Read models behind the log and not advancing this long: projection_stalled."""
    suspicious_window_s: float = _var(60.0, "DEALS_SUSPICIOUS_WINDOW_S", gt=0)
    suspicious_account_commands: int = _var(600, "DEALS_SUSPICIOUS_ACCOUNT_COMMANDS", ge=0)
    suspicious_key_commands: int = _var(20_000, "DEALS_SUSPICIOUS_KEY_COMMANDS", ge=0)
    suspicious_large_amount: int = _var(1_000_000 * UNITS_PER_DEAL, "DEALS_SUSPICIOUS_LARGE_AMOUNT",
                                        ge=0)
    """Base units (DEALS_SUSPICIOUS_LARGE_AMOUNT is a DEAL decimal string)."""
    suspicious_auth_failures: int = _var(100, "DEALS_SUSPICIOUS_AUTH_FAILURES", ge=0)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        return trusted_proxies(value) if isinstance(value, str) else value

    @field_validator("settlement_acknowledged", mode="before")
    @classmethod
    def _signatures(cls, value: Any) -> Any:
        return transaction_signatures(value) if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("suspicious_large_amount", mode="before")
    @classmethod
    def _deal_amount(cls, value: Any) -> Any:
        """A text is DEAL as the API writes amounts ("1000000.5"), never a float."""
        if not isinstance(value, str):
            return value
        try:
            return parse_amount(value, allow_zero=True)
        except LedgerError as error:
            raise ValueError(f"expected DEAL as a decimal string such as \"1000000\": {error.message}")\
                from None

    @field_validator("solana_mint")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        from solders.pubkey import Pubkey

        if value is None:
            return value
        try:
            Pubkey.from_string(value)
        except ValueError:
            raise ValueError("expected a Solana address (base58, 32 bytes)") from None
        return value

    @field_validator("priority_fee_cap_lamports")
    @classmethod
    def _price_within_cap(cls, value: int, info: ValidationInfo) -> int:
        price = info.data.get("priority_fee_micro_lamports")
        problem = None if price is None else price_problem(price, value)
        if problem is not None:
            raise ValueError(f"{problem} (DEALS_PRIORITY_FEE_MICROLAMPORTS)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, value: str | None) -> str | None:
        """Checked with the settings, so a bad key list is refused before any
        store is opened (never after ``serve`` created empty tables)."""
        from interface.wiring.api_keys import ApiKeyError, parse_api_keys

        if value:
            try:
                parse_api_keys(value)
            except ApiKeyError as error:  # its message never holds a token
                raise ValueError(str(error).removeprefix("DEALS_API_KEYS ")) from None
        return value

    @field_validator("postgres_schema")
    @classmethod
    def _schema_name(cls, value: str | None) -> str | None:
        """A name the event store's SQL can use unquoted (it does not quote
        it): anything else came back as PostgreSQL's multi-line syntax error."""
        if value is not None and not (SCHEMA_NAME.fullmatch(value) and
                                      not value.startswith("pg_")):
            raise ValueError("expected a PostgreSQL schema name: lower-case letters, digits and "
                             "_, starting with a letter or _, at most 63 characters, not pg_...")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """The schemes redis-py connects with: anything else passed the
        settings and died in ``serve``'s start-up with a traceback."""
        if value is not None and not value.startswith(REDIS_SCHEMES):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process: DEALS_* variables, then ./.env, then
        the defaults. Raises SettingsError naming each refused variable."""
        try:
            return Settings.model_validate(_Environment().model_dump())
        except ValidationError as error:
            raise SettingsError(describe(error)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (field names), validated like the original."""
        return Settings.model_validate({**self.model_dump(), **changes})

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads for persistence."""
        if self.database_url:
            return postgres_env(self.database_url, self.postgres_schema)
        return sqlite_env(self.data_dir)


class _Environment(BaseSettings, Settings):
    """Settings as pydantic-settings reads them from the environment: empty
    variables count as unset, lists are comma-separated (not JSON), and
    DEALS_* variables of other parts (the tests', the log's) are ignored."""

    model_config = SettingsConfigDict(frozen=True, env_file=".env", env_ignore_empty=True,
                                      extra="ignore", validate_by_name=False)


_ACCEPTED = {
    "bool_parsing": "expected on/off, true/false, yes/no or 1/0",
    "int_parsing": "expected a whole number",
    "float_parsing": "expected a number",
}
"""Messages for the types whose pydantic wording does not say what is accepted."""


def describe(error: ValidationError) -> str:
    """One line per refused variable: its name, what it accepts and, unless
    it is a secret, the value given."""
    lines = []
    for problem in error.errors(include_url=False):
        name = ".".join(str(part) for part in problem["loc"]) or "settings"
        field = _field_of(name)
        given = "" if field in SECRET_FIELDS or field is None else f" (got {problem['input']!r})"
        message = _ACCEPTED.get(problem["type"]) or problem["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}{given}")
    return "\n".join(lines)


def _field_of(variable: str) -> str | None:
    for name, info in Settings.model_fields.items():
        if variable in (name, info.validation_alias):
            return name
    return None


def variable_of(field: str) -> str:
    """The environment variable that sets ``field``."""
    return str(Settings.model_fields[field].validation_alias)


OTHER_VARIABLES = frozenset({
    "DEALS_BENCH_DATABASE_URL", "DEALS_BENCH_RUN", "DEALS_REQUIRE_SERVICES",
    "DEALS_FUZZ_EXAMPLES", "DEALS_MODEL_EXAMPLES", "DEALS_REPLAY_EXAMPLES",
    "DEALS_SCHEMATHESIS_EXAMPLES", "DEALS_SOAK_RATE_PER_S", "DEALS_SOAK_SECONDS",
})
"""DEALS_* variables read by the benchmarks and the tests, not the service."""
OTHER_PREFIXES = ("DEALS_TEST_",)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per DEALS_* variable nothing reads, naming the closest known
    one: a misspelt ``DEALS_PRT`` was silently ignored. A warning, not a
    refusal, so an environment shared with a newer version still starts."""
    known = {variable_of(field) for field in Settings.model_fields} | OTHER_VARIABLES
    lines = []
    for name in sorted(environ):
        upper = name.upper()  # pydantic-settings reads names in any case
        if not upper.startswith("DEALS_") or upper in known or upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"{name} is not a setting and is ignored{hint}")
    return lines


def transaction_signatures(text: str) -> tuple[str, ...]:
    """DEALS_SETTLEMENT_ACKNOWLEDGED: comma-separated base58 transaction
    signatures (64 bytes each); anything else is refused at start."""
    entries = tuple(dict.fromkeys(entry.strip() for entry in text.split(",") if entry.strip()))
    for entry in entries:
        try:
            Signature.from_string(entry)
        except ValueError:
            raise ValueError(f"{entry[:100]!r} is not a base58 transaction signature") from None
    return entries


def trusted_proxies(text: str) -> tuple[str, ...]:
    """DEALS_TRUSTED_PROXIES: comma-separated IP addresses or networks
    ("10.0.0.0/8"), or "*" for every client (only when nothing but the proxy
    can reach the port). Anything else is refused at start."""
    entries = tuple(entry.strip() for entry in text.split(",") if entry.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return entries
