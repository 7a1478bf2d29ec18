"""API key lists: parsing ``DEALS_API_KEYS`` into a keyring of scopes.

Here, in the composition root, and not in the HTTP layer, because the
settings check a key list when they load (a bad list is refused before any
store opens) and the HTTP layer reads the settings: with the parser in
``interface.http.auth`` the two imported each other. Tokens are compared in
constant time and never logged, echoed or put in a repr; only a key's name
is ever shown.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

KEY_FILE_NAME = "api-key"
GENERATED_KEY_NAME = "local-admin"
TOKEN_LENGTH_MAX = 512


class Scope(StrEnum):
    READ = "ledger:read"
    WRITE = "ledger:write"
    WITHDRAW = "ledger:withdraw"
    """Sends tokens out of custody to a user's wallet (POST /v1/withdrawals):
    a chain transfer no one can reverse, so not a power every write key holds
    (a write key also connects wallets: with both, one key could take any
    account's tokens)."""
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


def api_key(name: str, token: str, scopes: frozenset[Scope]) -> ApiKey:
    """A key as the keyring holds it: its name, scopes and the token's digest."""
    return ApiKey(Principal(name, scopes), _digest(token))


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
        keys.append(api_key(name, token, scopes))
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
