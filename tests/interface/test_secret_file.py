"""One reader and one writer for every secret file (custody key, API key)."""

from __future__ import annotations

import stat

import pytest

from interface.secret_file import SECRET_FILE_BYTES_MAX, create_secret_file, read_secret_file


class Refused(ValueError):
    pass


def test_a_created_secret_file_is_private_and_never_replaced(tmp_path):
    path = tmp_path / "keys" / "secret"
    assert create_secret_file(path, b"first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not create_secret_file(path, b"second")
    assert read_secret_file(path, Refused) == b"first"
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary left behind


def test_a_secret_file_larger_than_the_bound_is_refused_unread(tmp_path):
    path = tmp_path / "secret"
    assert create_secret_file(path, b"x" * (SECRET_FILE_BYTES_MAX + 1))
    with pytest.raises(Refused, match=f"larger than {SECRET_FILE_BYTES_MAX} bytes") as error:
        read_secret_file(path, Refused, what="test secret")
    assert "xxxx" not in str(error.value)


def test_a_missing_secret_file_names_the_file_not_a_traceback(tmp_path):
    with pytest.raises(Refused, match="cannot open test secret .*missing") as error:
        read_secret_file(tmp_path / "missing", Refused, what="test secret")
    assert error.value.__cause__ is None and error.value.__suppress_context__
