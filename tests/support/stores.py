"""Event store settings for a test: an SQLite file in a temporary folder, or
a fresh schema in the run's PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interface.wiring.settings import Settings


@dataclass(frozen=True)
class StoreConfig:
    kind: str  # "sqlite" | "postgres"
    settings: Settings

    @property
    def env(self) -> dict[str, str]:
        return self.settings.eventsourcing_env()


def sqlite_store(tmp_path: Path) -> StoreConfig:
    return StoreConfig("sqlite", Settings(data_dir=tmp_path / "var"))


def postgres_store(tmp_path: Path, url: str, schema: str) -> StoreConfig:
    return StoreConfig(
        "postgres", Settings(data_dir=tmp_path / "var", database_url=url, postgres_schema=schema)
    )
