"""Every error code the service can answer has its exception class, named
after the rule, under one root: a new code without a class fails here."""

from __future__ import annotations

import pytest

from interface.client import errors
from interface.client.errors import ERRORS_BY_CODE, LedgerError, error_from
from interface.http.errors import STATUS_BY_CODE


def test_every_code_of_the_service_has_its_class_with_its_status():
    assert set(ERRORS_BY_CODE) == set(STATUS_BY_CODE)
    wrong = {code: cls.status for code, cls in ERRORS_BY_CODE.items()
             if cls.status != STATUS_BY_CODE[code]}
    assert not wrong, f"classes whose status differs from the service's table: {wrong}"


@pytest.mark.parametrize("code", sorted(STATUS_BY_CODE))
def test_each_class_is_named_after_its_rule_and_says_when(code):
    cls = ERRORS_BY_CODE[code]
    assert issubclass(cls, LedgerError) and cls.__name__.endswith("Error")
    assert cls.__doc__, f"{cls.__name__} must say when it happens"


def test_the_platform_names_exist():
    for name in ("InsufficientBalanceError", "InvalidWalletAddressError", "AccountFrozenError",
                 "IdempotencyConflictError", "TransactionFailedError", "UnavailableError"):
        assert issubclass(getattr(errors, name), LedgerError)


def test_an_answer_becomes_its_exception_with_the_request_id():
    error = error_from(402, {"error": {"code": "insufficient_balance", "message": "short",
                                       "request_id": "abc"}})
    assert isinstance(error, errors.InsufficientBalanceError)
    assert (error.status, error.message, error.request_id) == (402, "short", "abc")
    assert "abc" in str(error)


def test_a_503_says_when_to_retry():
    error = error_from(503, {"error": {"code": "unavailable", "message": "down"}}, "1")
    assert isinstance(error, errors.UnavailableError) and error.retry_after_s == 1.0


def test_an_unknown_code_or_shape_is_still_a_ledger_error():
    newer = error_from(409, {"error": {"code": "brand_new_rule", "message": "m"}})
    assert isinstance(newer, errors.UnexpectedAnswerError) and newer.code == "brand_new_rule"
    proxy_page = error_from(502, None)
    assert isinstance(proxy_page, errors.UnexpectedAnswerError) and proxy_page.status == 502
