"""Opening the ledger with its commit seal keys (``DEALS_COMMIT_KEYS_FILE``),
read as a secret file: private, never logged, named in errors by path only."""

from __future__ import annotations

from application.eventlog.seals import SealKeyError, SealKeys
from application.write.event_store import LedgerApplication
from interface.secret_file import read_secret_file
from interface.wiring.settings import Settings, SettingsError


def seal_keys_of(settings: Settings) -> SealKeys | None:
    path = settings.commit_keys_file
    if path is None:
        return None
    content = read_secret_file(path, SettingsError, what="DEALS_COMMIT_KEYS_FILE")
    try:
        return SealKeys.parse(content.decode("utf-8", errors="replace"))
    except SealKeyError as error:
        raise SettingsError(f"DEALS_COMMIT_KEYS_FILE {path}: {error}") from None


def open_ledger(settings: Settings) -> LedgerApplication:
    """The application on the configured store, sealing when keys are set."""
    app = LedgerApplication(settings.eventsourcing_env())
    keys = seal_keys_of(settings)
    if keys is not None:
        app.use_seal_keys(keys)
    return app
