"""Secret files: the one way this service reads and creates a file that
holds a secret (the custody keypair, the generated admin API key, the
commit seal keys).

Both promises live here, once: a secret file is opened without following a
symlink (which could point the service at a file someone else controls) and
refused unless it is a regular file that neither group nor others can
access, checked on the very descriptor that is read (no swap between check
and read); a secret file this service creates is 0600 from its first byte,
written under a temporary name and linked into place, so there is no moment
where it is readable by others, half written, or silently replaced.

Errors name the file and the rule, never its content.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

SECRET_FILE_MODE = 0o600
SECRET_FILE_BYTES_MAX = 4096
"""No secret this service keeps is near this size (a Solana keypair's JSON
is under 300 bytes); a larger file is refused unread."""

ErrorFactory = Callable[[str], Exception]


def read_secret_file(path: Path, error: ErrorFactory, *, what: str = "secret file") -> bytes:
    """The file's bytes, once it is known to be private.

    Raises ``error(message)`` when the file cannot be opened, is a symlink,
    is not a regular file, is accessible by group or others, or is larger
    than ``SECRET_FILE_BYTES_MAX``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as failure:
        why = "it is a symlink" if failure.errno == errno.ELOOP else failure.strerror
        raise error(f"cannot open {what} {path}: {why}") from None
    try:
        _check_private(path, os.fstat(descriptor), error, what)
        content = os.read(descriptor, SECRET_FILE_BYTES_MAX + 1)
    finally:
        os.close(descriptor)
    if len(content) > SECRET_FILE_BYTES_MAX:
        raise error(f"{what} {path} is larger than {SECRET_FILE_BYTES_MAX} bytes")
    return content


def _check_private(path: Path, status: os.stat_result, error: ErrorFactory, what: str) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise error(f"{what} {path} is not a regular file")
    if status.st_mode & 0o077:
        mode = oct(stat.S_IMODE(status.st_mode))
        raise error(
            f"{what} {path} must not be accessible by group or others "
            f"(mode is {mode}); run: chmod 600 {path}"
        )


def create_secret_file(path: Path, content: bytes) -> bool:
    """Write ``content`` to a new file at ``path``, 0600 from creation.

    Returns False, writing nothing, when the file already exists (another
    process won the race: use theirs); a secret on disk is never replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    descriptor = os.open(temporary, flags, SECRET_FILE_MODE)
    try:
        os.fchmod(descriptor, SECRET_FILE_MODE)  # the umask may only have narrowed it
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        _fsync_directory(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def read_or_create_secret_file(
    path: Path, make: Callable[[], bytes], error: ErrorFactory, *, what: str = "secret file"
) -> tuple[bytes, bool]:
    """The secret at ``path``, made by ``make`` and created 0600 on first
    use (the generated keys in the data dir); True when this call created
    it. A file another process created first is read, never replaced."""
    created = False
    if not path.exists():
        created = create_secret_file(path, make())
    return read_secret_file(path, error, what=what), created


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
