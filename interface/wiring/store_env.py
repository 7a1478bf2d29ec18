"""The environment the eventsourcing library reads for persistence, built
from the ledger's settings (kept apart from them: settings say what the
operator chose, this says how the library is told)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from application.write.postgres_recorder import FACTORY_TOPIC as PG_FACTORY_TOPIC
from application.write.sealing import SQLITE_FACTORY_TOPIC


def sqlite_env(data_dir: Path) -> dict[str, str]:
    """The embedded store: ``events.sqlite`` in the (private) data dir."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # see wiring.data_dir
    return {
        "PERSISTENCE_MODULE": SQLITE_FACTORY_TOPIC,
        "SQLITE_DBNAME": str(data_dir / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


def postgres_env(url: str, schema: str | None) -> dict[str, str]:
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
