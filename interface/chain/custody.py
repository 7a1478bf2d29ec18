"""The custody keys: ``CustodyKey``, one keypair kept private, and
``CustodyKeys``, which key holds which power (fee payer, token-account
owner, mint and freeze authority, address base, anchor signer). Every
adapter signs through ``CustodyKeys.sign``, which signs with exactly the
role keys a message requires.

Whoever reads this key controls every token on chain, so the module owns two
promises: a key file readable by anyone but its owner is refused (and one we
create is 0600 from the first byte), and the secret never leaves
``CustodyKey``: its repr/str show the public key only, it refuses to be
pickled, and no error message or exception chain carries the file's content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NoReturn

from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from application.settlement.chain_port import ChainError
from interface.chain.transactions import Authorities
from interface.secret_file import read_or_create_secret_file, read_secret_file

KEY_FILE_NAME_DEFAULT = "custody-keypair.json"
ROLE_KEY_FILE_NAMES = {
    "fee-payer": "fee-payer-keypair.json",
    "owner": "custody-owner-keypair.json",
    "mint-authority": "mint-authority-keypair.json",
}
"""The data dir's key file of each power a key of its own may hold (a
rotation installs it there); absent and not configured: the custody key."""
KEYPAIR_LEN = 64
ANCHOR_SEED_PREFIX = b"deals-ledger:anchor-signer:v1:"


class CustodyKeyError(ChainError):
    """The custody key file is unsafe (readable or writable by group or
    others), unreadable, or not a Solana CLI keypair. The message names the
    file and the rule, never the file's content."""


class CustodyKey:
    """The custody authority's keypair, kept private.

    The wrapped ``Keypair`` is never handed out: its own ``str`` is the secret
    in base58. Callers get the public key and ask this object to sign.
    """

    __slots__ = ("__keypair", "__anchor_keypair", "__pubkey")

    def __init__(self, keypair: Keypair) -> None:
        self.__keypair = keypair
        self.__pubkey = keypair.pubkey()
        """Kept: ``Keypair.pubkey()`` derives it from the secret each time
        (about a fifth of signing a settlement transaction, py-spy)."""
        seed = hashlib.sha256(ANCHOR_SEED_PREFIX + bytes(keypair)[:32]).digest()
        self.__anchor_keypair = Keypair.from_seed(seed)

    @property
    def anchor_signer(self) -> Pubkey:
        """The anchors' co-signer: derived from the custody secret (so it
        needs no key file of its own) and used for nothing else, so the
        chain's index of its transactions lists exactly the anchors."""
        return self.__anchor_keypair.pubkey()

    def sign_anchor_transaction(self, message: Message, blockhash: Hash) -> Transaction:
        """Sign an anchor: the custody key pays, the anchor signer vouches."""
        return Transaction([self.__keypair, self.__anchor_keypair], message, blockhash)

    @property
    def pubkey(self) -> Pubkey:
        return self.__pubkey

    @property
    def address(self) -> str:
        return str(self.__pubkey)

    def sign_transaction(self, message: Message, blockhash: Hash) -> Transaction:
        """Sign a legacy transaction whose only signer is the custody key."""
        return Transaction([self.__keypair], message, blockhash)

    def partial_sign(self, transaction: Transaction, blockhash: Hash) -> None:
        """Add this key's signature and its anchor signer's to
        ``transaction``, for those of the two it requires."""
        required = _required_signers(transaction.message)
        for keypair in (self.__keypair, self.__anchor_keypair):
            if keypair.pubkey() in required:
                transaction.partial_sign([keypair], blockhash)

    def __repr__(self) -> str:
        return f"CustodyKey(pubkey={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("CustodyKey cannot be pickled: it holds the custody secret")


class CustodyKeys:
    """Which custody key holds which power; the one object adapters sign
    through. Every power defaults to ``address_base``, the custody key
    every ledger has had from its start: its public key is the base of the
    mint's and every token account's address and its secret seeds the
    anchor signer, so it stays for good whatever else rotates.

    The properties are public keys; secrets stay inside each ``CustodyKey``.
    """

    __slots__ = ("__address_base", "__fee_payer", "__owner", "__mint_authority")

    def __init__(
        self,
        address_base: CustodyKey,
        *,
        fee_payer: CustodyKey | None = None,
        owner: CustodyKey | None = None,
        mint_authority: CustodyKey | None = None,
    ) -> None:
        self.__address_base = address_base
        self.__fee_payer = fee_payer or address_base
        self.__owner = owner or address_base
        self.__mint_authority = mint_authority or address_base

    @property
    def fee_payer(self) -> Pubkey:
        return self.__fee_payer.pubkey

    @property
    def owner(self) -> Pubkey:
        return self.__owner.pubkey

    @property
    def mint_authority(self) -> Pubkey:
        """Mint authority, and freeze authority: the two go together."""
        return self.__mint_authority.pubkey

    @property
    def address_base(self) -> Pubkey:
        return self.__address_base.pubkey

    @property
    def anchor(self) -> Pubkey:
        return self.__address_base.anchor_signer

    @property
    def authorities(self) -> Authorities:
        return Authorities(fee_payer=self.fee_payer, owner=self.owner,
                           mint_authority=self.mint_authority,
                           address_base=self.address_base)

    def sign(self, message: Message, blockhash: Hash,
             co_signer: CustodyKey | None = None) -> Transaction:
        """Sign with every role key the message requires (each once), and
        ``co_signer`` (a key no role holds yet: a rotation's new key). A
        signer no such key holds is a ``CustodyKeyError`` naming it."""
        transaction = Transaction.new_unsigned(message)
        for key in [*self._distinct_keys(), *([co_signer] if co_signer else [])]:
            key.partial_sign(transaction, blockhash)
        unsigned = [str(signer) for signer, signature
                    in zip(_required_signers(message), transaction.signatures, strict=True)
                    if signature == Signature.default()]
        if unsigned:
            raise CustodyKeyError(f"no configured custody key signs for {', '.join(unsigned)}")
        return transaction

    def _distinct_keys(self) -> list[CustodyKey]:
        keys: dict[Pubkey, CustodyKey] = {}
        for key in (self.__fee_payer, self.__address_base, self.__owner, self.__mint_authority):
            keys.setdefault(key.pubkey, key)
        return list(keys.values())

    def __repr__(self) -> str:
        return (f"CustodyKeys(fee_payer={self.fee_payer}, owner={self.owner}, "
                f"mint_authority={self.mint_authority}, address_base={self.address_base})")

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("CustodyKeys cannot be pickled: it holds custody secrets")


def as_custody_keys(custody: CustodyKey | CustodyKeys) -> CustodyKeys:
    """One key stands for every power (as every ledger began)."""
    return custody if isinstance(custody, CustodyKeys) else CustodyKeys(custody)


def _required_signers(message: Message) -> list[Pubkey]:
    return list(message.account_keys[: message.header.num_required_signatures])


def load_custody_keypair(path: Path | None, data_dir: Path) -> CustodyKey:
    """The custody key from ``path`` (env DEALS_CUSTODY_KEYPAIR) when given;
    else the one in ``data_dir``, created there (0600) on first use."""
    if path is None:
        path = data_dir / KEY_FILE_NAME_DEFAULT
        content, _ = read_or_create_secret_file(
            path, lambda: json.dumps(list(bytes(Keypair()))).encode(), CustodyKeyError,
            what="custody key file")
    else:
        content = read_secret_file(path, CustodyKeyError, what="custody key file")
    return CustodyKey(_parse_keypair(path, content))


def load_role_key(path: Path | None, data_dir: Path, role: str) -> CustodyKey | None:
    """The key of one power (``ROLE_KEY_FILE_NAMES``): ``path`` (its
    DEALS_*_KEYPAIR setting) when given, which must exist; else its file in
    ``data_dir`` when there is one; else None (the custody key holds it).
    Never created: a ledger's powers move only by rotation."""
    what = f"{role} key file"
    if path is None:
        path = data_dir / ROLE_KEY_FILE_NAMES[role]
        if not path.exists() and not path.is_symlink():
            return None
    return CustodyKey(_parse_keypair(path, read_secret_file(path, CustodyKeyError, what=what),
                                     what=what))


def read_keypair_file(path: Path, what: str) -> CustodyKey:
    """A keypair file under the secret-file rules (a rotation's new key)."""
    return CustodyKey(_parse_keypair(path, read_secret_file(path, CustodyKeyError, what=what),
                                     what=what))


def _parse_keypair(path: Path, content: bytes, what: str = "custody key file") -> Keypair:
    """Parse a Solana CLI keypair (JSON array of 64 ints). Errors are raised
    outside any ``except`` block, so they chain no exception at all: the
    JSON decoder's error keeps the whole document, which is the secret, and
    even a suppressed ``__context__`` would still hold it."""
    numbers = _json_or_none(content)
    if not isinstance(numbers, list) or not _is_byte_list(numbers):
        raise CustodyKeyError(
            f"{what} {path} is not a Solana keypair (a JSON array of {KEYPAIR_LEN} bytes)"
        )
    keypair = _keypair_or_none(bytes(numbers))
    if keypair is None:
        raise CustodyKeyError(
            f"{what} {path}: its public half does not match its secret half"
        )
    return keypair


def _json_or_none(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _keypair_or_none(secret_and_public: bytes) -> Keypair | None:
    try:
        return Keypair.from_bytes(secret_and_public)
    except ValueError:
        return None


def _is_byte_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == KEYPAIR_LEN
        and all(type(item) is int and 0 <= item <= 255 for item in value)
    )
