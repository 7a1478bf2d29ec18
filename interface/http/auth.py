"""API keys and scopes, as the HTTP layer uses them.

The key list's parser and the keyring live in ``interface.wiring.api_keys``
(the settings check a key list when they load); this module adds the
generated admin key of the data dir. Keys come from ``DEALS_API_KEYS`` (``name:token:scope1|scope2,...``) or,
when that is unset, from the admin key ``deals-ledger serve`` generated in
the data dir. Tokens are compared in constant time and never logged,
echoed or put in a repr; only a key's name is ever shown.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from interface.secret_file import create_secret_file, read_secret_file
from interface.wiring.api_keys import (
    GENERATED_KEY_NAME,
    KEY_FILE_NAME,
    ApiKeyError,
    Keyring,
    Principal,
    Scope,
    api_key,
    parse_api_keys,
)
from interface.wiring.settings import Settings

__all__ = [
    "ApiKeyError", "Keyring", "Principal", "Scope", "ensure_generated_key",
    "key_file", "keyring_for", "parse_api_keys", "read_key_file",
]


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
    return Keyring([api_key(GENERATED_KEY_NAME, read_key_file(path), frozenset({Scope.ADMIN}))])


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
