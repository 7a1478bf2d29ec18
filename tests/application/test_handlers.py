"""The handler table is closed: a command class without a row in it would be
accepted by the writer and fail in the batch with a KeyError. This test
names the class instead."""

from __future__ import annotations

from application.commands import Command
from application.handlers import HANDLERS
from tests.support.registries import import_every_module, qualified, subclasses


def test_every_command_has_a_handler():
    import_every_module()
    missing = [qualified(cls) for cls in subclasses(Command) if cls not in HANDLERS]
    assert not missing, (
        f"commands without a handler in application/handlers/__init__.py HANDLERS: {missing}"
    )

