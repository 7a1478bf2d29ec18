"""Opening the ledger with its commit seal keys (``DEALS_COMMIT_KEYS_FILE``),
read as a secret file: private, never logged, named in errors by path only."""

from __future__ import annotations

from application.eventlog.reader import SqlEventLog
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
        try:
            _check_sealing_can_begin(app, settings.commit_seals_from)
        except SettingsError:
            app.close()
            raise
        app.use_seal_keys(keys, start_at=settings.commit_seals_from)
    return app


def _check_sealing_can_begin(app: LedgerApplication, start_at: int) -> None:
    """Refuse at start, not at the first command, a log with events and no
    seal whose head is not where the operator said sealing begins."""
    log = app.event_log
    assert isinstance(log, SqlEventLog)
    head = log.head()
    if head == 0 or log.start_seal() is not None or head == start_at:
        return
    raise SettingsError(
        f"the event log holds events up to position {head} and no commit seal. Turning "
        f"seals on for an existing ledger: set DEALS_COMMIT_SEALS_FROM={head}. Otherwise "
        "the seals were removed from the database: do not start; see docs/operations.md")
