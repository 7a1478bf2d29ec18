"""Every refusal's code has its status in the one table.

``STATUS_BY_CODE`` (interface/http/errors.py) is closed: a code missing
from it answers status 500, as a bug does, though the refusal was
deliberate. These tests walk every ``LedgerError`` subclass of
every layer and name the class whose code has no row.
"""

from __future__ import annotations

from domain.errors import LedgerError
from interface.http.errors import _DOMAIN_CODES, STATUS_BY_CODE
from tests.support.registries import import_every_module, qualified, subclasses


def error_classes() -> list[type[LedgerError]]:
    import_every_module()
    return [LedgerError, *subclasses(LedgerError)]


def test_every_error_code_has_a_status():
    missing = [f"{qualified(cls)} ({cls.code!r})" for cls in error_classes()
               if cls.code not in STATUS_BY_CODE]
    assert not missing, f"codes without a status in STATUS_BY_CODE: {missing}"


def test_every_validation_code_the_edge_gives_has_a_status():
    """``InvalidRequestError`` takes its code from FastAPI's validation
    errors; ``BatchAborted`` takes its refused item's (a class above)."""
    missing = sorted(code for code in _DOMAIN_CODES if code not in STATUS_BY_CODE)
    assert not missing, f"validation codes without a status in STATUS_BY_CODE: {missing}"


def test_every_status_row_is_a_code_some_refusal_has():
    """A row no error can reach is a rename that left its old code behind."""
    codes = {cls.code for cls in error_classes()} | set(_DOMAIN_CODES)
    stale = sorted(code for code in STATUS_BY_CODE if code not in codes)
    assert not stale, f"STATUS_BY_CODE rows no LedgerError has: {stale}"


def test_every_error_class_names_its_own_code():
    """A refusal that forgets its ``code`` inherits its parent's (a new rule
    would answer ``invalid_request``): each class says its code itself. The
    classes that copy their code from another refusal at run time, and the
    edge's base that is never raised itself, are named here."""
    copies_its_code = {"BatchAborted", "InvalidRequestError", "HttpRefusal"}
    inherited = [qualified(cls) for cls in error_classes()
                 if "code" not in vars(cls) and cls.__name__ not in copies_its_code]
    assert not inherited, f"errors without a code of their own: {inherited}"
