"""What each command declares of itself, checked, so a newcomer adding one
is told what they forgot: its own ``kind`` (fingerprints, metrics and
refusals name it), an ``id_field`` that is one of its fields, and at least
one sender (a route, or the ledger itself), else nothing can ever send it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import fields
from pathlib import Path

from application.commands import Command
from tests.support.registries import import_every_module, qualified, subclasses

REPO = Path(__file__).resolve().parents[2]
NOT_SENDERS = ("application/commands.py", "application/handlers/")
"""Where a command is defined and decided; a sender is anywhere else in the product."""


def commands() -> list[type]:
    import_every_module()
    return sorted(subclasses(Command), key=qualified)


def test_every_command_names_its_own_kind_once() -> None:
    inherited = [qualified(cls) for cls in commands() if "kind" not in vars(cls)]
    assert not inherited, f"commands without a kind of their own: {inherited}"
    repeated = [kind for kind, n in Counter(cls.kind for cls in commands()).items() if n > 1]
    assert not repeated, f"kinds used by more than one command: {repeated}"


def test_every_id_field_is_a_field_of_its_command() -> None:
    wrong = [f"{qualified(cls)}.id_field = {cls.id_field!r}" for cls in commands()
             if cls.id_field is not None and cls.id_field not in {f.name for f in fields(cls)}]
    assert not wrong, f"id_field names no field: {wrong}"


def product_sources() -> str:
    paths = [p for layer in ("application", "interface", "projections")
             for p in sorted((REPO / layer).rglob("*.py"))
             if not str(p.relative_to(REPO)).startswith(NOT_SENDERS)]
    return "\n".join(p.read_text() for p in paths)


def test_every_command_has_a_sender() -> None:
    sources = product_sources()
    unsent = [qualified(cls) for cls in commands()
              if not re.search(rf"\b{cls.__name__}\(", sources)]
    assert not unsent, (
        f"commands nothing in the product builds (no route, no internal sender): {unsent}"
    )
