"""All settings in one place, read from DEALS_* environment variables (and
a .env file in the working directory), with embedded defaults so a fresh
machine runs the service with nothing installed but Python."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from application.write.aggregate_cache import AGGREGATES_MAX_DEFAULT
from application.write.postgres_recorder import FACTORY_TOPIC as PG_FACTORY_TOPIC
from application.write.writer import BATCH_COMMANDS_MAX_DEFAULT
from domain.amounts import UNITS_PER_DEAL, parse_amount


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    database_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    solana_rpc_url: str | None = None
    custody_keypair: Path | None = None
    api_keys: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    batch_commands_max: int = BATCH_COMMANDS_MAX_DEFAULT
    cached_aggregates_max: int = AGGREGATES_MAX_DEFAULT
    postgres_schema: str | None = None
    body_bytes_max: int = 4 * 1024 * 1024
    """Requests with a larger body are refused with 413 before being parsed."""
    rate_limit_per_s: float = 500.0
    """Sustained requests per second per API key; 0 turns rate limiting off."""
    rate_limit_burst: int = 1000
    """Requests a key may send at once after being idle (the bucket's size)."""
    redis_prefix: str = "deals:"
    """Prefix of every Redis key this service writes (rate-limit buckets...)."""
    ready_lag_max: int = 10_000
    """/ready fails when the read models are more log positions behind than this."""
    shutdown_grace_s: float = 30.0
    """On SIGTERM, how long in-flight requests may take before they are cut."""
    # the connection edge (interface.http.edge; README: Security and alerts)
    header_timeout_s: float = 10.0
    """A request's head (request line and headers) must arrive within this
    long of its first byte (of the connection, for the first request)."""
    body_timeout_s: float = 30.0
    """A request's body must arrive within this long of its head."""
    header_bytes_max: int = 16 * 1024
    """A larger request head is refused with 431."""
    connections_max: int = 1000
    """Open connections per process (also kept under the open-file limit)."""
    keep_alive_timeout_s: int = 5
    """An idle keep-alive connection is closed after this many seconds."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks whose X-Forwarded-For / X-Forwarded-Proto are
    believed; from anyone else those headers are ignored."""
    projections_enabled: bool = True
    """Run the projector in this process (off: only ``deals-ledger project`` workers)."""
    # settlement and reconciliation
    settlement_enabled: bool = True
    settlement_commitment: str = "confirmed"
    settlement_batch_movements: int | None = None
    settlement_poll_interval_s: float = 0.4
    solana_timeout_s: float = 10.0
    reconcile_interval_s: float = 3600.0
    # alerts and suspicious activity (README: Security and alerts)
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_secret: str | None = field(default=None, repr=False)
    alert_cooldown_s: float = 60.0
    """The same condition alerts at most once per this many seconds."""
    health_watch_interval_s: float = 5.0
    projection_stall_s: float = 60.0
    """Read models behind the log and not advancing this long: projection_stalled."""
    suspicious_window_s: float = 60.0
    suspicious_account_commands: int = 600
    suspicious_key_commands: int = 20_000
    suspicious_large_amount: int = 1_000_000 * UNITS_PER_DEAL
    suspicious_auth_failures: int = 100
    """Base units (DEALS_SUSPICIOUS_LARGE_AMOUNT is a DEAL decimal string)."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = {**_read_dotenv(Path(".env")), **(os.environ if environ is None else environ)}
        keypair = env.get("DEALS_CUSTODY_KEYPAIR")
        return cls(
            data_dir=Path(env.get("DEALS_DATA_DIR") or "./var"),
            database_url=env.get("DEALS_DATABASE_URL") or None,
            redis_url=env.get("DEALS_REDIS_URL") or None,
            solana_rpc_url=env.get("DEALS_SOLANA_RPC_URL") or None,
            custody_keypair=Path(keypair) if keypair else None,
            api_keys=env.get("DEALS_API_KEYS") or None,
            host=env.get("DEALS_HOST") or "127.0.0.1",
            port=int(env.get("DEALS_PORT") or 8000),
            batch_commands_max=int(
                env.get("DEALS_MAX_BATCH_COMMANDS") or BATCH_COMMANDS_MAX_DEFAULT
            ),
            cached_aggregates_max=int(
                env.get("DEALS_MAX_CACHED_AGGREGATES") or AGGREGATES_MAX_DEFAULT
            ),
            postgres_schema=env.get("DEALS_POSTGRES_SCHEMA") or None,
            body_bytes_max=int(env.get("DEALS_MAX_BODY_BYTES") or 4 * 1024 * 1024),
            rate_limit_per_s=float(env.get("DEALS_RATE_LIMIT_PER_S") or 500.0),
            rate_limit_burst=int(env.get("DEALS_RATE_LIMIT_BURST") or 1000),
            redis_prefix=env.get("DEALS_REDIS_PREFIX") or "deals:",
            ready_lag_max=int(env.get("DEALS_READY_MAX_LAG") or 10_000),
            shutdown_grace_s=float(env.get("DEALS_SHUTDOWN_GRACE_S") or 30.0),
            **_edge_settings(env),
            projections_enabled=_flag(env.get("DEALS_PROJECTIONS"), default=True),
            **_settlement_settings(env),
            **_alert_settings(env),
        )

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads for persistence."""
        if self.database_url:
            return _postgres_env(self.database_url, self.postgres_schema)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # see wiring.data_dir
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }


def _edge_settings(env: dict[str, str]) -> dict[str, Any]:
    return {
        "header_timeout_s": _positive(env, "DEALS_HEADER_TIMEOUT_S", 10.0),
        "body_timeout_s": _positive(env, "DEALS_BODY_TIMEOUT_S", 30.0),
        "header_bytes_max": int(_positive(env, "DEALS_MAX_HEADER_BYTES", 16 * 1024)),
        "connections_max": int(_positive(env, "DEALS_MAX_CONNECTIONS", 1000)),
        "keep_alive_timeout_s": int(_positive(env, "DEALS_KEEP_ALIVE_TIMEOUT_S", 5)),
        "trusted_proxies": trusted_proxies(env.get("DEALS_TRUSTED_PROXIES") or ""),
    }


def _positive(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number, got {text!r}")
    return value


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
            raise ValueError(
                f"DEALS_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return entries


def _settlement_settings(env: dict[str, str]) -> dict[str, Any]:
    batch = env.get("DEALS_SETTLEMENT_BATCH")
    return {
        "settlement_enabled": _flag(env.get("DEALS_SETTLEMENT"), default=True),
        "settlement_commitment": env.get("DEALS_SETTLEMENT_COMMITMENT") or "confirmed",
        "settlement_batch_movements": int(batch) if batch else None,
        "settlement_poll_interval_s": float(env.get("DEALS_SETTLEMENT_POLL_INTERVAL_S") or 0.4),
        "solana_timeout_s": float(env.get("DEALS_SOLANA_TIMEOUT_S") or 10.0),
        "reconcile_interval_s": float(env.get("DEALS_RECONCILE_INTERVAL_S") or 3600.0),
    }


def _alert_settings(env: dict[str, str]) -> dict[str, Any]:
    large = env.get("DEALS_SUSPICIOUS_LARGE_AMOUNT")
    return {
        "alert_webhook_url": env.get("DEALS_ALERT_WEBHOOK_URL") or None,
        "alert_webhook_secret": env.get("DEALS_ALERT_WEBHOOK_SECRET") or None,
        "alert_cooldown_s": float(env.get("DEALS_ALERT_COOLDOWN_S") or 60.0),
        "health_watch_interval_s": float(env.get("DEALS_HEALTH_WATCH_INTERVAL_S") or 5.0),
        "projection_stall_s": float(env.get("DEALS_PROJECTION_STALL_S") or 60.0),
        "suspicious_window_s": float(env.get("DEALS_SUSPICIOUS_WINDOW_S") or 60.0),
        "suspicious_account_commands": int(env.get("DEALS_SUSPICIOUS_ACCOUNT_COMMANDS") or 600),
        "suspicious_key_commands": int(env.get("DEALS_SUSPICIOUS_KEY_COMMANDS") or 20_000),
        "suspicious_auth_failures": int(env.get("DEALS_SUSPICIOUS_AUTH_FAILURES") or 100),
        "suspicious_large_amount": (
            parse_amount(large, allow_zero=True) if large else 1_000_000 * UNITS_PER_DEAL
        ),
    }


def _flag(value: str | None, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected on/off, got {value!r}")


def _postgres_env(url: str, schema: str | None) -> dict[str, str]:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ValueError("DEALS_DATABASE_URL must be a postgresql:// URL")
    env = {
        "PERSISTENCE_MODULE": PG_FACTORY_TOPIC,
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_LOCK_TIMEOUT": "10",
        # A pooled connection the server closed (restart, pg_terminate_backend)
        # is replaced before use, so the first command after an outage is not
        # refused for a connection that died while idle.
        "POSTGRES_PRE_PING": "y",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env
