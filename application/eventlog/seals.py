"""Commit seals: every commit the service writes carries an authenticator
made with a key the database does not hold, so that write access to the
database alone cannot add a movement the ledger will project, settle or
pass in an audit.

A *seal* is one row of the ``commit_seals`` table, written in the same
transaction as the commit's events (``application.write.sealing``): the
HMAC-SHA256 (stdlib ``hmac``) of the commit's events (position, aggregate
id, version, topic, stored bytes) and of the previous seal's MAC, with the
key named by ``key_id``. HMAC, not an Ed25519 signature: the service is
both the only writer and the only checker of seals (auditors outside check
anchors and proofs, which the custody key signs on chain), so a shared
secret proves as much, costs a few microseconds per commit and needs no new
dependency.

The first sealed commit of a log writes a *start seal* first: the position
where authentication began (the last event before it), MACed too, and only
at the head the operator named (``application.write.sealing.seal_rows``).
Events at or before it were written before seals existed (the golden
ledger): they are accepted unsealed up to the start, never after it; the
first anchor covers them and the anchors on chain pin them from then on.
Every event after it must lie inside a seal whose MAC checks out, in an
unbroken chain from the start seal; one that does not is refused and named
by position. A log with keys but no start seal at all (the seals table
emptied behind the service's back) is read only as far as an anchor
recorded in the log reaches.

Keys rotate by id: a key file holds ``key_id:hex`` lines, the last one
seals new commits and every one checks the seals made with it. Secrets
never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SEAL_DOMAIN = b"deals-ledger/commit-seal/v1"
START_DOMAIN = b"deals-ledger/seal-start/v1"
KEY_BYTES_MIN = 32
SEALS_TABLE = "commit_seals"

SealedEvent = tuple[int, str, int, str, bytes]
"""(position, aggregate id as 32 hex digits, version, topic, stored bytes)."""


class SealKeyError(ValueError):
    """A key file that cannot be used; the message never holds a secret."""


@dataclass(frozen=True)
class SealKey:
    key_id: str
    secret: bytes = field(repr=False)


class SealKeys:
    """The keys a process knows: the last seals, all of them check."""

    def __init__(self, keys: Sequence[SealKey]) -> None:
        if not keys:
            raise SealKeyError("no commit seal key given")
        self._by_id = {key.key_id: key for key in keys}
        if len(self._by_id) != len(keys):
            raise SealKeyError("commit seal key ids must be distinct")
        self.current = keys[-1]

    def get(self, key_id: str) -> SealKey | None:
        return self._by_id.get(key_id)

    def __repr__(self) -> str:
        return f"SealKeys(ids={list(self._by_id)}, current={self.current.key_id!r})"

    @classmethod
    def parse(cls, text: str) -> SealKeys:
        """``key_id:hex`` per line (blank lines and ``#`` comments skipped)."""
        keys = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key_id, _, secret_hex = line.partition(":")
            try:
                secret = bytes.fromhex(secret_hex.strip())
            except ValueError:
                raise SealKeyError(f"line {number}: the key is not hex") from None
            if not key_id.strip() or len(secret) < KEY_BYTES_MIN:
                raise SealKeyError(
                    f"line {number}: expected key_id:hex with at least {KEY_BYTES_MIN} bytes")
            keys.append(SealKey(key_id.strip(), secret))
        return cls(keys)


@dataclass(frozen=True)
class Seal:
    """Covers the events at positions ``first..last``; a start seal has
    ``first == last + 1`` (it covers none: ``last`` is where authentication
    began)."""

    first: int
    last: int
    key_id: str
    mac: bytes

    @property
    def is_start(self) -> bool:
        return self.first > self.last


_LENGTH = struct.Struct(">Q").pack
"""A part's length prefix: 8 bytes, big-endian."""


def _framed(*parts: bytes) -> list[bytes]:
    """Length-prefixed parts, so no two inputs share their bytes."""
    out: list[bytes] = []
    for part in parts:
        out += (_LENGTH(len(part)), part)
    return out


def start_mac(key: SealKey, start: int) -> bytes:
    message = b"".join(_framed(START_DOMAIN, key.key_id.encode(), str(start).encode()))
    return hmac.digest(key.secret, message, "sha256")


def commit_mac(key: SealKey, previous: bytes, events: Iterable[SealedEvent]) -> bytes:
    """The seal's MAC, over the framed events joined into one message and
    MACed in one call: an audit checks every stored event's seal, and a
    part-by-part ``HMAC.update`` cost about twice as much per event; the
    one-shot digest also runs without the GIL for a commit's worth of bytes,
    so a reader thread can check seals while another folds."""
    parts = _framed(SEAL_DOMAIN, key.key_id.encode(), previous)
    add = parts.extend
    for position, originator_hex, version, topic, state in events:
        at, oid, ver, name = b"%d" % position, originator_hex.encode(), b"%d" % version, topic.encode()
        add((_LENGTH(len(at)), at, _LENGTH(len(oid)), oid, _LENGTH(len(ver)), ver,
             _LENGTH(len(name)), name, _LENGTH(len(state)), state))
    return hmac.digest(key.secret, b"".join(parts), "sha256")


def start_seal(keys: SealKeys, head: int) -> Seal:
    """The row that says authentication began after position ``head``."""
    key = keys.current
    return Seal(head + 1, head, key.key_id, start_mac(key, head))


def seals_for_commit(
    keys: SealKeys, previous: Seal | None, head_before: int, events: Sequence[SealedEvent]
) -> list[Seal]:
    """The rows a commit writes: its seal, after a start seal at
    ``head_before`` when the log has none yet."""
    key = keys.current
    rows = []
    if previous is None:
        previous = start_seal(keys, head_before)
        rows.append(previous)
    mac = commit_mac(key, previous.mac, events)
    rows.append(Seal(events[0][0], events[-1][0], key.key_id, mac))
    return rows


def seal_is_valid(keys: SealKeys, seal: Seal, previous: Seal | None,
                  events: Sequence[SealedEvent]) -> bool:
    """Whether ``seal`` authenticates exactly ``events`` after ``previous``."""
    key = keys.get(seal.key_id)
    if key is None:
        return False
    if seal.is_start:
        return hmac.compare_digest(seal.mac, start_mac(key, seal.last))
    if previous is None or not events:
        return False
    return hmac.compare_digest(seal.mac, commit_mac(key, previous.mac, events))
