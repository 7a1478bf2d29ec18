import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from domain.errors import InvalidWalletAddress
from domain.wallet import validate_wallet_address, wallet_id


def test_accepts_a_real_ed25519_public_key():
    address = str(Keypair().pubkey())
    assert validate_wallet_address(address) == address


def test_wallet_id_is_derived_from_the_address():
    address = str(Keypair().pubkey())
    assert wallet_id(address) == wallet_id(address)
    assert wallet_id(address) != wallet_id(str(Keypair().pubkey()))


def off_curve_address() -> str:
    pda, _ = Pubkey.find_program_address([b"escrow"], Pubkey.from_string("11111111111111111111111111111111"))
    return str(pda)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "empty"),
        ("0OIl" + "1" * 40, "not base58: '0' at position 0"),
        ("abc", "decodes to 3 bytes, not 32"),
        ("z" * 44, "decodes to 33 bytes, not 32"),
        ("x" * 45, "45 characters"),
        (12345, "must be a string"),
        ("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM\u200b", "not base58"),
        ("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtW'; --", "not base58"),
    ],
)
def test_rejects_malformed_addresses_with_the_reason(address, reason):
    with pytest.raises(InvalidWalletAddress, match=reason):
        validate_wallet_address(address)


def test_rejects_a_program_derived_address_as_off_curve():
    with pytest.raises(InvalidWalletAddress, match="off the ed25519 curve"):
        validate_wallet_address(off_curve_address())


def test_the_all_zero_key_is_not_a_wallet():
    with pytest.raises(InvalidWalletAddress, match="all-zero"):
        validate_wallet_address("11111111111111111111111111111111")
