"""The custody key: unsafe key files are refused, a created one is 0600
from its first byte and reused, and the secret appears in no repr, str,
error message or traceback."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import traceback
from pathlib import Path

import pytest
from solders.keypair import Keypair

from interface.chain.custody import (
    KEY_FILE_NAME_DEFAULT,
    CustodyKey,
    CustodyKeyError,
    load_custody_keypair,
)


def write_key_file(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def secret_renderings(keypair: Keypair) -> list[str]:
    """Every way the 32 secret bytes could show up in text."""
    secret = bytes(keypair)[:32]
    return [
        json.dumps(list(secret))[1:-1],  # the file's own format, without brackets
        ",".join(str(b) for b in secret[:8]),
        secret.hex(),
        str(keypair),  # solders' base58 of all 64 bytes
        base64.b64encode(secret).decode(),
    ]


def assert_no_secret(text: str, keypair: Keypair) -> None:
    for rendering in secret_renderings(keypair):
        assert rendering not in text


def test_a_key_is_created_0600_on_first_use_and_reused(tmp_path: Path) -> None:
    first = load_custody_keypair(None, tmp_path)
    key_file = tmp_path / KEY_FILE_NAME_DEFAULT
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_custody_keypair(None, tmp_path).address == first.address
    assert sorted(path.name for path in tmp_path.iterdir()) == [KEY_FILE_NAME_DEFAULT]


def test_a_created_key_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_custody_keypair(None, tmp_path / "fresh")
    finally:
        os.umask(previous)
    mode = (tmp_path / "fresh" / KEY_FILE_NAME_DEFAULT).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_created_key_file_is_a_solana_cli_keypair(tmp_path: Path) -> None:
    custody = load_custody_keypair(None, tmp_path)
    numbers = json.loads((tmp_path / KEY_FILE_NAME_DEFAULT).read_text())
    assert len(numbers) == 64
    assert str(Keypair.from_bytes(bytes(numbers)).pubkey()) == custody.address


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    keypair = Keypair()
    write_key_file(tmp_path / KEY_FILE_NAME_DEFAULT, json.dumps(list(bytes(keypair))))
    assert load_custody_keypair(None, tmp_path).pubkey == keypair.pubkey()


def test_a_given_key_file_is_loaded(tmp_path: Path) -> None:
    keypair = Keypair()
    path = write_key_file(tmp_path / "custody.json", json.dumps(list(bytes(keypair))))
    assert load_custody_keypair(path, tmp_path / "unused").pubkey == keypair.pubkey()
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o601])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    keypair = Keypair()
    path = write_key_file(tmp_path / "custody.json", json.dumps(list(bytes(keypair))), mode)

    with pytest.raises(CustodyKeyError) as refused:
        load_custody_keypair(path, tmp_path)

    assert "group or others" in str(refused.value)
    assert "chmod 600" in str(refused.value)
    assert_no_secret(str(refused.value), keypair)


def test_the_default_key_file_is_refused_too_once_loosened(tmp_path: Path) -> None:
    load_custody_keypair(None, tmp_path)
    (tmp_path / KEY_FILE_NAME_DEFAULT).chmod(0o644)
    with pytest.raises(CustodyKeyError):
        load_custody_keypair(None, tmp_path)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    target = write_key_file(tmp_path / "real.json", json.dumps(list(bytes(Keypair()))))
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(CustodyKeyError):
        load_custody_keypair(link, tmp_path)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CustodyKeyError, match="cannot open custody key file"):
        load_custody_keypair(tmp_path / "absent.json", tmp_path)


def malformed_contents(keypair: Keypair) -> list[str]:
    numbers = list(bytes(keypair))
    mismatched = numbers[:32] + list(bytes(Keypair().pubkey()))
    return [
        json.dumps(numbers)[:-1],  # truncated JSON: the decoder error keeps the document
        json.dumps(numbers[:63]),
        json.dumps(numbers + [1]),
        json.dumps([*numbers[:63], 256]),
        json.dumps({"secret": numbers}),
        json.dumps(mismatched),  # public half not derived from the secret half
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_malformed_key_file_error_carries_no_secret(tmp_path: Path, case: int) -> None:
    keypair = Keypair()
    path = write_key_file(tmp_path / "custody.json", malformed_contents(keypair)[case])

    with pytest.raises(CustodyKeyError) as refused:
        load_custody_keypair(path, tmp_path)

    rendered = "".join(traceback.format_exception(refused.value))
    assert_no_secret(rendered, keypair)
    assert_no_secret(repr(refused.value), keypair)
    assert refused.value.__cause__ is None and refused.value.__context__ is None


def test_repr_and_str_show_only_the_public_key(tmp_path: Path) -> None:
    keypair = Keypair()
    custody = CustodyKey(keypair)
    for text in (repr(custody), str(custody), f"{custody}", f"{custody!r}", repr([custody])):
        assert text == f"CustodyKey(pubkey={keypair.pubkey()})" or str(keypair.pubkey()) in text
        assert_no_secret(text, keypair)


def test_the_custody_key_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(CustodyKey(Keypair()))


def test_the_custody_key_exposes_no_keypair_attribute() -> None:
    custody = CustodyKey(Keypair())
    public = [name for name in dir(custody) if not name.startswith("_")]
    assert sorted(public) == [
        "address", "anchor_signer", "partial_sign", "pubkey", "sign_anchor_transaction",
        "sign_transaction",
    ]
    with pytest.raises(AttributeError):
        custody.__dict__  # noqa: B018 (slots: no instance dict to dump)
