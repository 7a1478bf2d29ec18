"""``deals-ledger settings``: the effective settings, as this process reads
them (environment, ./.env, defaults), one ``VARIABLE=value`` a line, so an
operator sees what a ``serve`` started here would run with.

Secrets are redacted: a URL keeps its scheme, user, host, port and database
(the password becomes ``***``; a webhook's path, which often is its token,
too); keys and secrets show only whether they are set.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from domain.amounts import format_amount
from interface.wiring.settings import SECRET_FIELDS, Settings, variable_of

REDACTED = "***"
WHOLE_SECRETS = frozenset({"api_keys", "alert_webhook_secret"})
PATH_SECRETS = frozenset({"alert_webhook_url"})
DEAL_AMOUNTS = frozenset({"suspicious_large_amount"})
"""Held in base units, set (and so shown) in DEAL."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (variable -> value; null when unset)")


def run_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings, secrets redacted."""
    shown = effective(settings)
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for variable, value in shown.items():
            print(f"{variable}={'' if value is None else value}")
    return 0


def effective(settings: Settings) -> dict[str, Any]:
    """Every setting by its variable's name, as text (None when unset)."""
    return {variable_of(name): _shown(name, getattr(settings, name))
            for name in Settings.model_fields}


def _shown(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in SECRET_FIELDS:
        return redact(field, str(value))
    if field in DEAL_AMOUNTS:  # as the variable takes it, so it can be set back as shown
        return format_amount(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    return value if isinstance(value, int | float) else str(value)


def redact(field: str, value: str) -> str:
    """``value`` with everything that may be a secret replaced by ***."""
    if field in WHOLE_SECRETS:
        return REDACTED
    parts = urlsplit(value)
    if not parts.scheme or not parts.hostname:
        return REDACTED  # not a URL we can take apart: show nothing of it
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    if parts.username is not None:
        password = f":{REDACTED}" if parts.password is not None else ""
        netloc = f"{parts.username}{password}@{netloc}"
    path = f"/{REDACTED}" if field in PATH_SECRETS and parts.path.strip("/") else parts.path
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, ""))


run_settings.add_arguments = add_arguments  # type: ignore[attr-defined]
