"""The custody authority: the one keypair that pays fees, owns every token
account, and holds the DEAL mint and freeze authorities.

Whoever reads this key controls every token on chain, so the module owns two
promises: a key file readable by anyone but its owner is refused (and one we
create is 0600 from the first byte), and the secret never leaves
``CustodyKey``: its repr/str show the public key only, it refuses to be
pickled, and no error message or exception chain carries the file's content.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import NoReturn

from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from application.settlement.chain_port import ChainError

DEFAULT_KEY_FILE_NAME = "custody-keypair.json"
KEYPAIR_LEN = 64
KEY_FILE_MODE = 0o600
KEY_FILE_BYTES_MAX = 4096  # a 64-int JSON array is < 300 bytes; refuse anything huge


class CustodyKeyError(ChainError):
    """The custody key file is unsafe (readable or writable by group or
    others), unreadable, or not a Solana CLI keypair. The message names the
    file and the rule, never the file's content."""


class CustodyKey:
    """The custody authority's keypair, kept private.

    The wrapped ``Keypair`` is never handed out: its own ``str`` is the secret
    in base58. Callers get the public key and ask this object to sign.
    """

    __slots__ = ("__keypair",)

    def __init__(self, keypair: Keypair) -> None:
        self.__keypair = keypair

    @property
    def pubkey(self) -> Pubkey:
        return self.__keypair.pubkey()

    @property
    def address(self) -> str:
        return str(self.__keypair.pubkey())

    def sign_transaction(self, message: Message, blockhash: Hash) -> Transaction:
        """Sign a legacy transaction whose only signer is the custody key."""
        return Transaction([self.__keypair], message, blockhash)

    def __repr__(self) -> str:
        return f"CustodyKey(pubkey={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("CustodyKey cannot be pickled: it holds the custody secret")


def load_custody_keypair(path: Path | None, data_dir: Path) -> CustodyKey:
    """The custody key from ``path`` (env DEALS_CUSTODY_KEYPAIR) when given;
    else the one in ``data_dir``, created there (0600) on first use."""
    if path is not None:
        return CustodyKey(_read_key_file(path))
    default_path = data_dir / DEFAULT_KEY_FILE_NAME
    if not default_path.exists():
        _create_key_file(default_path)
    return CustodyKey(_read_key_file(default_path))


def _read_key_file(path: Path) -> Keypair:
    """Open once and check the mode on that very descriptor, so the file
    cannot be swapped between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise CustodyKeyError(f"cannot open custody key file {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as key_file:
        _refuse_unsafe_mode(path, os.fstat(key_file.fileno()))
        content = key_file.read(KEY_FILE_BYTES_MAX + 1)
    return _parse_keypair(path, content)


def _refuse_unsafe_mode(path: Path, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise CustodyKeyError(f"custody key file {path} is not a regular file")
    if status.st_mode & 0o077:
        mode = oct(stat.S_IMODE(status.st_mode))
        raise CustodyKeyError(
            f"custody key file {path} must not be accessible by group or others "
            f"(mode is {mode}); run: chmod 600 {path}"
        )


def _parse_keypair(path: Path, content: bytes) -> Keypair:
    """Parse a Solana CLI keypair (JSON array of 64 ints). Errors are raised
    outside any ``except`` block, so they chain no exception at all: the
    JSON decoder's error keeps the whole document, which is the secret, and
    even a suppressed ``__context__`` would still hold it."""
    numbers = _json_or_none(content) if len(content) <= KEY_FILE_BYTES_MAX else None
    if not isinstance(numbers, list) or not _is_byte_list(numbers):
        raise CustodyKeyError(
            f"custody key file {path} is not a Solana keypair (a JSON array of {KEYPAIR_LEN} bytes)"
        )
    keypair = _keypair_or_none(bytes(numbers))
    if keypair is None:
        raise CustodyKeyError(
            f"custody key file {path}: its public half does not match its secret half"
        )
    return keypair


def _json_or_none(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _keypair_or_none(secret_and_public: bytes) -> Keypair | None:
    try:
        return Keypair.from_bytes(secret_and_public)
    except ValueError:
        return None


def _is_byte_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == KEYPAIR_LEN
        and all(type(item) is int and 0 <= item <= 255 for item in value)
    )


def _create_key_file(path: Path) -> None:
    """Write a new keypair with mode 0600 from creation (O_EXCL on a temp
    name, never world-readable), then link it into place: ``link`` fails if
    another process won the race, and a key on disk is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_FILE_MODE)
    try:
        os.fchmod(fd, KEY_FILE_MODE)  # the umask may only have narrowed it; make it exact
        with os.fdopen(fd, "w") as key_file:
            json.dump(list(bytes(Keypair())), key_file)
            key_file.flush()
            os.fsync(key_file.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use theirs
            os.link(temp_path, path)
        _fsync_directory(path.parent)
    finally:
        temp_path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
