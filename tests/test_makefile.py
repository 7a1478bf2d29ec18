"""``make python-check``: the one line a newcomer without Python 3.11 sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python_check(python: str) -> subprocess.CompletedProcess[str]:
    """As a newcomer types it: a top-level make, even when the suite itself
    runs under ``make test`` (whose MAKELEVEL would make it say ``make[1]``)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "python-check", f"PYTHON={python}"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(autouse=True)
def _make_is_there():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")


def test_a_missing_interpreter_gets_one_clear_line_and_no_shell_error():
    result = python_check("/nonexistent/python3.11")
    assert result.returncode != 0
    assert result.stdout == ""
    ours, *rest = result.stderr.splitlines()
    assert ours == ("deals-ledger needs Python 3.11; '/nonexistent/python3.11' is missing: "
                    "install python3.11 or run make PYTHON=/path/to/python3.11")
    assert all(line.startswith("make: ***") for line in rest), rest  # make's own, nothing else


def test_no_interpreter_at_all_says_so():
    result = python_check("")
    assert result.stderr.splitlines()[0].startswith(
        "deals-ledger needs Python 3.11; neither python3.11 nor python3 is on PATH")
    assert "not found" not in result.stderr


def test_another_version_is_named(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'Python 3.9'\n")
    fake.chmod(0o755)
    result = python_check(str(fake))
    assert result.returncode != 0
    assert f"'{fake}' is Python 3.9: install python3.11" in result.stderr


def test_python_3_11_passes_silently():
    result = python_check(sys.executable)  # the tests run on 3.11
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
