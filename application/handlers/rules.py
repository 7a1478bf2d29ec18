"""Rules of the ledger's settings that a handler applies but cannot know
itself (a handler decides from the command, the aggregates and the time).
The composition root builds them from the settings; a command processor
built without them (a test of other rules) applies the defaults here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rules:
    wallet_cooldown_s: float = 0.0
    """A wallet connected less than this many seconds ago receives no
    withdrawal (DEALS_WITHDRAWAL_WALLET_COOLDOWN_S; 0: at once)."""


DEFAULT_RULES = Rules()
