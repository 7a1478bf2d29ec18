"""API keys and scopes.

Keys come from ``DEALS_API_KEYS`` (``name:token:scope1|scope2,...``) or,
when that is unset, from the admin key ``deals-ledger serve`` generated in
the data dir. Tokens are compared in constant time and never logged,
echoed or put in a repr; only a key's name is ever shown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from interface.secret_file import create_secret_file, read_secret_file
from interface.wiring.settings import Settings

KEY_FILE_NAME = "api-key"
GENERATED_KEY_NAME = "local-admin"
TOKEN_LENGTH_MAX = 512


class Scope(StrEnum):
    READ = "ledger:read"
    WRITE = "ledger:write"
    ADMIN = "admin"


class ApiKeyError(ValueError):
    """The configured keys cannot be used (the message never holds a token)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and scopes, never its token."""

    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True)
class ApiKey:
    principal: Principal
    digest: bytes = field(repr=False)


class Keyring:
    """The configured keys; ``authenticate`` finds the one a token belongs to."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"Keyring({[key.principal.name for key in self._keys]})"

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, token: str) -> Principal | None:
        """Compare the token's digest with every key's (all of them, so the
        time taken says nothing about which key or how much matched)."""
        digest = _digest(token)
        found = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key.principal
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse_api_keys(text: str) -> Keyring:
    keys, names = [], set()
    for index, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, token, scopes = _split_entry(entry, index)
        if name in names:
            raise ApiKeyError(f"DEALS_API_KEYS names key {name!r} twice")
        names.add(name)
        keys.append(ApiKey(Principal(name, scopes), _digest(token)))
    if not keys:
        raise ApiKeyError("DEALS_API_KEYS holds no key")
    return Keyring(keys)


def _split_entry(entry: str, index: int) -> tuple[str, str, frozenset[Scope]]:
    # Scopes contain ":" themselves ("ledger:read"), so a token cannot.
    name, token, scope_text = ([*entry.split(":", 2), "", ""])[:3]
    if not name or not token or not scope_text:
        raise ApiKeyError(f"DEALS_API_KEYS entry {index + 1} is not name:token:scopes")
    if len(token) > TOKEN_LENGTH_MAX or any(char.isspace() for char in token):
        raise ApiKeyError(f"the token of key {name!r} is malformed")
    try:
        scopes = frozenset(Scope(scope) for scope in scope_text.split("|"))
    except ValueError:
        known = ", ".join(scope.value for scope in Scope)
        raise ApiKeyError(f"key {name!r} names an unknown scope; known: {known}") from None
    return name, token, scopes


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def keyring_for(settings: Settings) -> Keyring:
    """The keys this process accepts: DEALS_API_KEYS, else the generated key."""
    if settings.api_keys:
        return parse_api_keys(settings.api_keys)
    path = key_file(settings)
    if not path.exists():
        raise ApiKeyError(
            "no API keys: set DEALS_API_KEYS or start with `deals-ledger serve`, "
            f"which generates an admin key in {path}"
        )
    return Keyring([ApiKey(Principal(GENERATED_KEY_NAME, frozenset({Scope.ADMIN})),
                           _digest(read_key_file(path)))])


def read_key_file(path: Path) -> str:
    """The generated admin token, from a private file (``interface.secret_file``)."""
    content = read_secret_file(path, ApiKeyError, what="API key file")
    token = content.decode("utf-8", "replace").strip()
    if not token:
        raise ApiKeyError(f"{path} is empty")
    return token


def ensure_generated_key(settings: Settings) -> str | None:
    """With no DEALS_API_KEYS, make sure the data dir holds an admin key.

    Returns the token when it was created just now (to print it once), None
    when it already existed. The file is written under a temporary name with
    mode 0600 from its creation and then linked into place, which fails if
    another process got there first: no moment where it is readable by
    others, half written, or silently replaced.
    """
    path = key_file(settings)
    if path.exists():
        read_key_file(path)
        return None
    token = secrets.token_urlsafe(32)
    return token if create_secret_file(path, (token + "\n").encode()) else None
