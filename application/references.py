"""A caller's own references on a movement: ``external_ref`` and ``metadata``.

The platform's services know a movement by their own ids (an order, a
search request); they send them with the command so the ledger can find the
movement by them later. Both are optional and bounded, and checked as
``reason`` is (no control or bidirectional characters), so they can neither
bloat an event nor forge a log line. They are part of what is asked: a
repeat with other references is an idempotency conflict.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from application.commands import check_reason
from domain.errors import InvalidRequest

METADATA_KEYS_MAX = 16
METADATA_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""A key is short and plain, so it reads the same in every language's map."""
METADATA_VALUE_LENGTH_MAX = 256
EXTERNAL_REF_LENGTH_MAX = 256

Metadata = tuple[tuple[str, str], ...]
"""Metadata inside a command: sorted pairs, so equal maps fingerprint alike."""


def check_external_ref(external_ref: object) -> str | None:
    """The reference, bounded and printable; None when not given."""
    if external_ref is None:
        return None
    text = check_reason(external_ref, name="external_ref")
    if not text:
        raise InvalidRequest("external_ref must not be empty")
    if len(text) > EXTERNAL_REF_LENGTH_MAX:
        raise InvalidRequest(f"external_ref is longer than {EXTERNAL_REF_LENGTH_MAX} characters")
    return text


def check_metadata(metadata: object) -> Metadata | None:
    """A flat map of strings to strings, bounded in keys and sizes, as
    sorted pairs; None when not given or empty (both mean none)."""
    if metadata is None:
        return None
    if isinstance(metadata, Mapping):
        pairs: list[object] = list(metadata.items())
    elif isinstance(metadata, tuple | list):
        pairs = list(metadata)
    else:
        raise InvalidRequest("metadata must be an object of strings")
    checked = sorted(_checked_pair(pair) for pair in pairs)
    if len({key for key, _ in checked}) != len(checked):
        raise InvalidRequest("metadata names a key twice")
    if len(checked) > METADATA_KEYS_MAX:
        raise InvalidRequest(f"metadata has more than {METADATA_KEYS_MAX} keys")
    return tuple(checked) or None


def _checked_pair(pair: object) -> tuple[str, str]:
    if not isinstance(pair, tuple | list) or len(pair) != 2:
        raise InvalidRequest("metadata must be an object of strings")
    key, value = pair
    if not isinstance(key, str) or not METADATA_KEY_PATTERN.fullmatch(key):
        raise InvalidRequest(
            "metadata keys are 1 to 64 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit")
    if not isinstance(value, str):
        raise InvalidRequest(f"metadata value of '{key}' must be a string")
    if len(value) > METADATA_VALUE_LENGTH_MAX:
        raise InvalidRequest(
            f"metadata value of '{key}' is longer than {METADATA_VALUE_LENGTH_MAX} characters")
    return key, check_reason(value, name=f"metadata value of '{key}'")


def references_of(command: object) -> dict[str, object]:
    """A movement command's references, checked, as its Transfer records
    them: only those given, so other events keep their earlier shape."""
    metadata = check_metadata(getattr(command, "metadata", None))
    external_ref = check_external_ref(getattr(command, "external_ref", None))
    given: dict[str, object] = {} if metadata is None else {"metadata": dict(metadata)}
    if external_ref is not None:
        given["external_ref"] = external_ref
    return given


def as_map(metadata: Metadata | None) -> dict[str, str] | None:
    """The stored and answered form: a JSON object."""
    return None if metadata is None else dict(metadata)
