"""Service types are checked, never crash on a value of the wrong type."""

import pytest

from domain.errors import UnknownServiceType
from domain.pricing import check_service_type


@pytest.mark.parametrize("value", [{"a": 1}, ["search"], None, 5, "Search"])
def test_a_service_type_that_is_not_known_is_unknown_service_type(value):
    with pytest.raises(UnknownServiceType):
        check_service_type(value)
