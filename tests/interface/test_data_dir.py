"""The data dir is private: 0700, every file in it 0600, from the first start
(whatever the umask) and after starting on a dir of an earlier version,
which is tightened and keeps working; a key file open to others is still
refused (not tightened), and a data dir that cannot be made private stops
the start with a reason."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from interface.wiring.data_dir import secure_data_dir
from tests.interface.cli_support import REPO, cli_env
from tests.support.stores import sqlite_store

GOLDEN_SQLITE = REPO / "tests" / "golden" / "v1" / "sqlite"
KEY_FILE = "custody-keypair.json"


def deals_ledger(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The CLI under the usual operator's umask (022), which would leave new
    files 0644 if the service did not set its own."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("deals-ledger")), *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022),
    )


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for entry in root.rglob("*"):
        if not entry.is_symlink():
            found[str(entry.relative_to(root))] = stat.S_IMODE(entry.stat().st_mode)
    return found


def open_to_others(root: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(root).items() if mode & 0o077}


def test_a_new_data_dir_and_everything_in_it_are_private(store):
    env = cli_env(store)
    for args in (("init",), ("project", "--once"), ("settle", "--once")):
        result = deals_ledger(env, *args)
        assert result.returncode == 0, result.stderr
    data_dir = store.settings.data_dir
    found = modes(data_dir)
    assert f"chain{os.sep}embedded-solana.sqlite3" in found and KEY_FILE in found
    if store.kind == "sqlite":
        assert {"events.sqlite", "readmodels.sqlite", "settlement.sqlite"} <= set(found)
    assert open_to_others(data_dir) == {}


def test_a_data_dir_of_an_earlier_version_is_tightened_and_keeps_working(tmp_path):
    store = sqlite_store(tmp_path)
    shutil.copytree(GOLDEN_SQLITE, store.settings.data_dir)  # 0755 dirs, 0644 files
    os.chmod(store.settings.data_dir / KEY_FILE, 0o600)  # as the key rule demands
    assert "events.sqlite" in open_to_others(store.settings.data_dir)
    result = deals_ledger(cli_env(store), "replay")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "now private" in result.stderr and "events.sqlite" in result.stderr
    assert open_to_others(store.settings.data_dir) == {}


def test_an_empty_data_dir_an_operator_made_is_made_private_without_a_warning(tmp_path, caplog):
    made = tmp_path / "made-by-mkdir"
    made.mkdir(mode=0o755)
    os.chmod(made, 0o755)
    with caplog.at_level("WARNING", logger="interface.wiring.data_dir"):
        assert secure_data_dir(made) == [made]
    assert open_to_others(made) == {} and caplog.records == []


def test_a_key_file_open_to_others_is_refused_not_tightened(tmp_path):
    store = sqlite_store(tmp_path)
    shutil.copytree(GOLDEN_SQLITE, store.settings.data_dir)
    key = store.settings.data_dir / KEY_FILE
    os.chmod(key, 0o644)
    result = deals_ledger(cli_env(store), "settle", "--once")
    assert result.returncode != 0
    assert "custody key file" in result.stderr and "chmod 600" in result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o644


def test_a_data_dir_that_is_a_file_stops_the_start(tmp_path):
    store = sqlite_store(tmp_path)
    store.settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    store.settings.data_dir.write_text("not a directory")
    result = deals_ledger(cli_env(store), "init")
    assert result.returncode == 78  # exit_codes.CONFIG: DEALS_DATA_DIR is unusable
    assert "is not a directory" in result.stderr


def test_symlinks_are_not_followed_and_key_files_are_left_to_their_check(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("someone else's")
    outside.chmod(0o644)
    data_dir = tmp_path / "var"
    (data_dir / "chain").mkdir(parents=True)
    (data_dir / "chain" / "state").write_text("x")
    (data_dir / "key").write_text("k")
    (data_dir / "link").symlink_to(outside)
    for entry in (data_dir, data_dir / "chain", data_dir / "chain" / "state", data_dir / "key"):
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    umask = os.umask(0o022)
    try:
        tightened = secure_data_dir(data_dir, [data_dir / "key"])
    finally:
        os.umask(umask)
    assert {p.relative_to(data_dir).as_posix() for p in tightened} == {".", "chain",
                                                                       "chain/state"}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert stat.S_IMODE((data_dir / "key").stat().st_mode) == 0o644
