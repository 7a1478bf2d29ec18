"""Opening the ledger with its commit seal keys: every ledger seals its
commits (``application.eventlog.seals``).

The keys are read from ``DEALS_COMMIT_KEYS_FILE`` when it is set, else from
``commit-keys`` in the data dir, generated there (0600) at the first start,
as the custody keypair is. Either way they are a secret file (private,
never logged, named in errors by path only) and never in the database: on
PostgreSQL too the key stays a file, so write access to the database alone
cannot seal a forged event.

Sealing begins where it is recorded in the log (the start seal), written
when a ledger first opens with keys: at position 0 for a new ledger, at the
head for one written before seals (an upgrade: a key generated now, or
``DEALS_COMMIT_SEALS_FROM`` naming the head of a configured one). A log
whose seals are gone, or sealed with a key this process lacks, is refused
at start, naming what to do.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from application.eventlog.reader import SqlEventLog
from application.eventlog.seals import KEY_BYTES_MIN, SealKeyError, SealKeys
from application.write.event_store import LedgerApplication
from application.write.sealing import SealsMissing
from interface.secret_file import read_or_create_secret_file, read_secret_file
from interface.wiring.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

COMMIT_KEYS_FILE_NAME = "commit-keys"
"""The generated key file, in the data dir, when DEALS_COMMIT_KEYS_FILE is unset."""


def commit_keys_path(settings: Settings) -> Path:
    return settings.commit_keys_file or settings.data_dir / COMMIT_KEYS_FILE_NAME


def _new_key_file() -> bytes:
    """One ``key_id:hex`` line; the id (stored with every seal) says when."""
    from datetime import UTC, datetime

    key_id = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return f"{key_id}:{secrets.token_hex(KEY_BYTES_MIN)}\n".encode()


def seal_keys_of(settings: Settings) -> tuple[SealKeys, bool]:
    """The process's keys, and whether this call generated them."""
    path = commit_keys_path(settings)
    what = "DEALS_COMMIT_KEYS_FILE" if settings.commit_keys_file else "commit seal key file"
    if settings.commit_keys_file is None:
        content, created = read_or_create_secret_file(path, _new_key_file, SettingsError,
                                                      what=what)
    else:
        content, created = read_secret_file(path, SettingsError, what=what), False
    try:
        return SealKeys.parse(content.decode("utf-8", errors="replace")), created
    except SealKeyError as error:
        raise SettingsError(f"{what} {path}: {error}") from None


def open_ledger(settings: Settings, *, auditing: bool = False) -> LedgerApplication:
    """The application on the configured store, sealing every commit.

    ``auditing`` (``deals-ledger replay``): the ledger is only read. A log
    that has no start seal yet is left as it is: no key is generated and
    no start seal written, so replaying a backup or a pre-seal ledger
    changes nothing, and an auditor's host cannot begin sealing with a key
    the API hosts lack. With a key file there and no start seal, the seals
    were removed (a log's anchors, which are rows of the same database,
    cannot stand in for them): refused as the other roles refuse it.
    Without one there is nothing to check its events with."""
    app = LedgerApplication(settings.eventsourcing_env())
    try:
        if auditing:
            _read_with_keys(app, settings)
        else:
            _use_keys(app, settings)
    except SettingsError:
        app.close()
        raise
    return app


def _read_with_keys(app: LedgerApplication, settings: Settings) -> None:
    log = app.event_log
    assert isinstance(log, SqlEventLog)
    if log.start_seal() is not None:
        _use_keys(app, settings)
        return
    if settings.commit_keys_file is None and not commit_keys_path(settings).exists():
        logger.warning("the event log has no commit seal yet and there is no key file: "
                       "the replay checks no seal and writes none")
        return
    # a key file and no start seal: sealing began here and the seals were
    # removed (refused, as every role refuses it), unless the operator named
    # the head where a configured key begins
    _check_sealing_can_begin(log.head(), settings.commit_seals_from)
    keys, _ = seal_keys_of(settings)
    app.use_seal_keys(keys, start_at=settings.commit_seals_from)


def _use_keys(app: LedgerApplication, settings: Settings) -> None:
    log = app.event_log
    assert isinstance(log, SqlEventLog)
    start = log.start_seal()
    path = commit_keys_path(settings)
    if start is not None and settings.commit_keys_file is None and not path.exists():
        raise SettingsError(
            f"the event log is sealed (key {start.key_id!r}) and this process has no commit "
            f"seal key: copy the key file of the process that began sealing to {path}, or set "
            "DEALS_COMMIT_KEYS_FILE to it (every process of a ledger needs the same keys)")
    keys, created = seal_keys_of(settings)
    head = log.head()
    start_at = head if created and start is None else settings.commit_seals_from
    if start is None:
        _check_sealing_can_begin(head, start_at)
    _check_keys_known(log, keys, path)
    app.use_seal_keys(keys, start_at=start_at)
    if start is None:
        try:
            app.begin_sealing()
        except SealsMissing as missing:
            raise SettingsError(str(missing)) from None
        if head:
            logger.warning("commit seals begin after position %d (events up to it were "
                           "written before seals); keys: %s", head, path)


def _check_sealing_can_begin(head: int, start_at: int) -> None:
    """Refuse at start a log with events and no seal whose head is not
    where sealing begins."""
    if head == 0 or head == start_at:
        return
    raise SettingsError(
        f"the event log holds events up to position {head} and no commit seal. Turning "
        f"seals on for an existing ledger: set DEALS_COMMIT_SEALS_FROM={head}. Otherwise "
        "the seals were removed from the database: do not start; see docs/operations.md")


def _check_keys_known(log: SqlEventLog, keys: SealKeys, path: Path) -> None:
    """Refuse at start, not at the first read, a log whose first or latest
    seal was made with a key this process does not hold (another host's
    generated key, or a rotated file missing its old lines)."""
    for which, seal in (("first", log.start_seal()), ("latest", log.seal_before(log.head() + 2))):
        if seal is not None and keys.get(seal.key_id) is None:
            raise SettingsError(
                f"the event log's {which} commit seal was made with key {seal.key_id!r}, which "
                f"{path} does not hold: every process of a ledger needs the same key file "
                "(keep old lines after a rotation)")
