"""The data dir is private: the dir 0700, every file in it 0600.

It holds the ledger itself (``events.sqlite``, ``readmodels.sqlite``,
``settlement.sqlite`` and their WAL files, the embedded chain's database)
and its keys. Every process of the service secures it before it opens
anything there (``deals-ledger`` at start, ``LedgerService`` for uvicorn's
workers and tests):

- a missing dir is created 0700, and so is an empty one made 0700
  silently (an operator's ``mkdir`` under umask 022: nothing was exposed);
- an existing one, and every directory and regular file under it, is
  *tightened* to 0700 / 0600, with one WARNING naming how many and the
  first few. Data dirs of earlier versions (0755 / 0644) must keep working,
  and refusing would only make the operator run the same chmod: data that
  was readable is not a credential someone can go on using once hidden;
- the key files (``api-key``, ``custody-keypair.json``, ``commit-keys``,
  the configured custody and commit seal keys) are left alone:
  ``interface.secret_file`` *refuses* them when others can read them,
  because an exposed key must be replaced, not hidden;
- symlinks are not followed (whatever they point at is the operator's);
- the process's umask becomes 077, so every file it creates afterwards
  (SQLite's WAL and journal files, lock files, the chain's state) is
  private from its first byte.

A path that is not a directory, or an entry this user cannot tighten, is
refused with ``DataDirError`` naming it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Collection, Iterator
from pathlib import Path

from interface.wiring.settings import Settings

logger = logging.getLogger(__name__)

DATA_DIR_MODE = 0o700
PRIVATE_UMASK = 0o077
ENTRIES_MAX = 100_000
"""A data dir holds a few dozen entries; the walk stops past this many."""
NAMED_IN_WARNING_MAX = 5


class DataDirError(Exception):
    """The data dir cannot be made private (not a directory, not ours)."""


def secure_data_dir(path: Path, secret_files: Collection[Path] = ()) -> list[Path]:
    """Make ``path`` private as the module says; returns what was tightened.

    ``secret_files`` are left to ``interface.secret_file``'s check.
    Raises ``DataDirError``.
    """
    os.umask(PRIVATE_UMASK)
    if not path.exists():
        path.mkdir(mode=DATA_DIR_MODE, parents=True)
        return []
    if not path.is_dir():
        raise DataDirError(f"data dir {path} is not a directory")
    skipped = {os.path.abspath(secret) for secret in secret_files}
    empty = not any(path.iterdir())
    tightened = [entry for entry in _entries(path) if _tighten(entry, skipped)]
    if tightened and not empty:
        named = ", ".join(str(entry.relative_to(path)) for entry in
                          tightened[:NAMED_IN_WARNING_MAX])
        logger.warning(
            "data dir %s: %d entries were open to group or others and are now private "
            "(dirs 0700, files 0600): %s%s", path, len(tightened), named,
            ", ..." if len(tightened) > NAMED_IN_WARNING_MAX else "",
        )
    return tightened


def _entries(root: Path) -> Iterator[Path]:
    """The dir itself, then every directory and regular file under it (no
    symlink followed)."""
    yield root
    seen = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            seen += 1
            if seen > ENTRIES_MAX:
                raise DataDirError(f"data dir {root} holds more than {ENTRIES_MAX} entries")
            entry = Path(directory, name)
            kind = entry.lstat().st_mode
            if stat.S_ISDIR(kind) or stat.S_ISREG(kind):
                yield entry


def _tighten(entry: Path, skipped: Collection[str]) -> bool:
    """Take every group and other permission away (0755 -> 0700, 0644 ->
    0600); True when there were any."""
    if os.path.abspath(entry) in skipped:
        return False
    current = stat.S_IMODE(entry.lstat().st_mode)
    if not current & 0o077:
        return False
    try:
        os.chmod(entry, current & ~0o077)
    except PermissionError as error:
        raise DataDirError(
            f"{entry} in the data dir is open to others (mode {oct(current)}) and cannot "
            f"be made private ({type(error).__name__}); run: chmod go= {entry}"
        ) from None
    return True


def secure_settings_data_dir(settings: Settings) -> list[Path]:
    """``secure_data_dir`` for the settings' data dir, leaving its key files
    (the generated API key, the custody and commit seal keys) to their own check."""
    from interface.chain.custody import KEY_FILE_NAME_DEFAULT, ROLE_KEY_FILE_NAMES
    from interface.wiring.api_keys import KEY_FILE_NAME
    from interface.wiring.seal_keys import commit_keys_path

    secrets = [settings.data_dir / KEY_FILE_NAME, settings.data_dir / KEY_FILE_NAME_DEFAULT,
               commit_keys_path(settings)]
    secrets += [settings.data_dir / name for name in ROLE_KEY_FILE_NAMES.values()]
    given = (settings.custody_keypair, settings.fee_payer_keypair,
             settings.custody_owner_keypair, settings.mint_authority_keypair)
    secrets += [path for path in given if path is not None]
    return secure_data_dir(settings.data_dir, secrets)
