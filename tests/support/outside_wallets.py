"""A user's own wallet on the test chain, outside custody: its keypair, a
token account it owns, DEAL minted into it by the mint authority (as a
faucet would), and the ``transfer_checked`` it signs itself to deposit.

The wallet's transactions go straight to the embedded chain (a user sends
them to the cluster, not to the ledger); the adapters only read them."""

from __future__ import annotations

import struct

from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction

from interface.chain import transactions as tx
from interface.chain.custody import CustodyKey
from interface.chain.embedded import EmbeddedSolana, SendOutcome

WALLET_LAMPORTS = 10 * 10**9
_INITIALIZE_ACCOUNT3 = 18
_SET_AUTHORITY = 6
_CLOSE_ACCOUNT = 9
_INITIALIZE_MINT2 = 20
_ACCOUNT_OWNER = 2
_AMOUNT_OFFSET = 64  # a token account's amount: after its mint and owner
_ROUTER = Pubkey.from_string("Rout3r1111111111111111111111111111111111111")
_RECOVER_NESTED = 2  # the Associated Token Account program's RecoverNested


class OutsideWallet:
    """One wallet keypair and one token account of the DEAL mint it owns."""

    def __init__(self, chain: EmbeddedSolana, mint: Pubkey) -> None:
        self.chain = chain
        self.mint = mint
        self.keypair = Keypair()
        self.token_keypair = Keypair()
        chain.fund(self.keypair.pubkey(), WALLET_LAMPORTS)
        self._open_token_account()

    @property
    def address(self) -> str:
        """The wallet's own address: what ``POST /v1/wallets`` connects."""
        return str(self.keypair.pubkey())

    @property
    def token_account(self) -> str:
        return str(self.token_keypair.pubkey())

    def fund(self, custody: CustodyKey, amount: int) -> SendOutcome:
        """Mint ``amount`` into the wallet's token account with the mint
        authority: DEAL the ledger never held, for a test."""
        instruction = tx.mint_to_instruction(
            custody.pubkey, self.token_keypair.pubkey(), amount, self.mint)
        blockhash, _ = self.chain.latest_blockhash()
        message = Message.new_with_blockhash([instruction], custody.pubkey, blockhash)
        return _landed(self.chain.process(custody.sign_transaction(message, blockhash)))

    @property
    def associated_token_account(self) -> Pubkey:
        """Where a withdrawal to this wallet lands."""
        return tx.associated_token_address(self.address, self.mint)

    def deposit(self, deposit_address: str, amount: int, *,
                source: Pubkey | None = None) -> SendOutcome:
        """The wallet's own ``transfer_checked`` into ``deposit_address``,
        from its token account (or ``source``, another it owns)."""
        owner = self.keypair.pubkey()
        instruction = Instruction(tx.TOKEN_PROGRAM_ID, struct.pack(
            "<BQB", 12, amount, tx.DEAL_DECIMALS), [
            AccountMeta(source or self.token_keypair.pubkey(), is_signer=False,
                        is_writable=True),
            AccountMeta(self.mint, is_signer=False, is_writable=False),
            AccountMeta(Pubkey.from_string(deposit_address), is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=True, is_writable=False),
        ])
        return self._send([instruction], [self.keypair])

    def burn(self, source: Pubkey, amount: int) -> SendOutcome:
        """The wallet burns DEAL from a token account it owns: the supply
        shrinks outside custody, behind the ledger's back."""
        return self._send([tx.burn_instruction(self.keypair.pubkey(), source, amount,
                                               self.mint)], [self.keypair])

    def open_associated_account(self, amount: int) -> Pubkey:
        """Create the wallet's associated token account (the wallet paying)
        and move ``amount`` into it from its other token account."""
        associated = self.associated_token_account
        create = tx.create_associated_account_instruction(
            self.keypair.pubkey(), self.address, self.mint)
        self._send([create, self._transfer_instruction(str(associated), amount, checked=True)],
                   [self.keypair])
        return associated

    def close_token_account(self, account: Pubkey | None = None) -> None:
        """Burn what a token account of the wallet (its first one unless
        ``account``) still holds and close it, collecting its rent: a
        deposit from it can no longer be returned there."""
        account = account or self.token_keypair.pubkey()
        found = self.chain.get_account(account)
        assert found is not None, "the wallet's token account is closed already"
        amount = tx.decode_token_account(bytes(found.data)).amount
        owner = self.keypair.pubkey()
        burn = [tx.burn_instruction(owner, account, amount, self.mint)] if amount else []
        close = Instruction(tx.TOKEN_PROGRAM_ID, bytes([_CLOSE_ACCOUNT]), [
            AccountMeta(account, is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=True, is_writable=False)])
        self._send([*burn, close], [self.keypair])

    def reopen_token_account_for_another_mint(self) -> None:
        """Close the wallet's token account and open one at the same address
        for a mint the wallet makes itself: it is no DEAL account any more."""
        self.close_token_account()
        mint = Keypair()
        rent = self.chain.rent_lamports()
        create = create_account(CreateAccountParams(
            from_pubkey=self.keypair.pubkey(), to_pubkey=mint.pubkey(),
            lamports=rent.mint_account, space=tx.MINT_ACCOUNT_LEN, owner=tx.TOKEN_PROGRAM_ID))
        initialize = Instruction(
            tx.TOKEN_PROGRAM_ID,
            struct.pack("<BB", _INITIALIZE_MINT2, tx.DEAL_DECIMALS) + bytes(self.keypair.pubkey())
            + bytes([0]), [AccountMeta(mint.pubkey(), is_signer=False, is_writable=True)])
        self._send([create, initialize], [self.keypair, mint])
        self._open_token_account(mint.pubkey())

    def give_away_associated_account(self) -> str:
        """Create the wallet's associated token account and hand its
        ownership to a fresh key (the token program's SetAuthority): a
        withdrawal to this wallet is then refused on chain, since creating
        the associated account idempotently requires the wallet to own it.
        What a stranger can do to make a return of their deposit fail.
        Answers the new owner."""
        owner = self.keypair.pubkey()
        associated = tx.associated_token_address(self.address, self.mint)
        new_owner = Keypair().pubkey()
        create = tx.create_associated_account_instruction(owner, self.address, self.mint)
        give_away = Instruction(
            tx.TOKEN_PROGRAM_ID,
            struct.pack("<BBB", _SET_AUTHORITY, _ACCOUNT_OWNER, 1) + bytes(new_owner),
            [AccountMeta(associated, is_signer=False, is_writable=True),
             AccountMeta(owner, is_signer=True, is_writable=False)])
        self._send([create, give_away], [self.keypair])
        return str(new_owner)

    def transfer(self, deposit_address: str, *amounts: int, checked: bool = False) -> SendOutcome:
        """One transaction of the wallet's token-program transfers into
        ``deposit_address``, one instruction per amount: plain ``transfer``
        (instruction 3, no mint named) unless ``checked``."""
        instructions = [self._transfer_instruction(deposit_address, amount, checked=checked)
                        for amount in amounts]
        return self._send(instructions, [self.keypair])

    def transfer_with(self, destination: str, amount: int, other: OutsideWallet,
                      other_destination: str, other_amount: int) -> SendOutcome:
        """One transaction of two ``transfer_checked``: this wallet's
        ``amount`` into ``destination``, then ``other``'s ``other_amount``
        into ``other_destination``, both signing (as an app batching two
        users' payments would); this wallet pays the fee."""
        instructions = [self._transfer_instruction(destination, amount, checked=True),
                        other._transfer_instruction(other_destination, other_amount,
                                                    checked=True)]
        return self._send(instructions, [self.keypair, other.keypair])

    def _transfer_instruction(self, destination: str, amount: int, *, checked: bool
                              ) -> Instruction:
        source = AccountMeta(self.token_keypair.pubkey(), is_signer=False, is_writable=True)
        target = AccountMeta(Pubkey.from_string(destination), is_signer=False, is_writable=True)
        owner = AccountMeta(self.keypair.pubkey(), is_signer=True, is_writable=False)
        if not checked:
            return Instruction(tx.TOKEN_PROGRAM_ID, struct.pack("<BQ", 3, amount),
                               [source, target, owner])
        mint = AccountMeta(self.mint, is_signer=False, is_writable=False)
        return Instruction(tx.TOKEN_PROGRAM_ID, struct.pack("<BQB", 12, amount, tx.DEAL_DECIMALS),
                           [source, mint, target, owner])

    def recover_nested(self, custody: CustodyKey, amount: int) -> tuple[SendOutcome, str, str]:
        """A real transfer made inside another program: DEAL minted into a
        token account owned by the wallet's own associated token account (a
        "nested" one), then the Associated Token Account program's
        RecoverNested, which moves it by CPI (``transfer_checked``) into the
        wallet's associated token account. Returns the outcome, the nested
        account (the source) and the wallet's associated one (the
        destination)."""
        wallet = self.address
        outer = tx.associated_token_address(wallet, self.mint)
        nested = tx.associated_token_address(str(outer), self.mint)
        self._send([
            tx.create_associated_account_instruction(self.keypair.pubkey(), wallet, self.mint),
            tx.create_associated_account_instruction(self.keypair.pubkey(), str(outer), self.mint),
        ], [self.keypair])
        blockhash, _ = self.chain.latest_blockhash()
        mint_to = tx.mint_to_instruction(custody.pubkey, nested, amount, self.mint)
        message = Message.new_with_blockhash([mint_to], custody.pubkey, blockhash)
        _landed(self.chain.process(custody.sign_transaction(message, blockhash)))
        recover = Instruction(tx.ASSOCIATED_TOKEN_PROGRAM_ID, bytes([_RECOVER_NESTED]), [
            AccountMeta(nested, is_signer=False, is_writable=True),
            AccountMeta(self.mint, is_signer=False, is_writable=False),
            AccountMeta(outer, is_signer=False, is_writable=True),
            AccountMeta(outer, is_signer=False, is_writable=False),
            AccountMeta(self.mint, is_signer=False, is_writable=False),
            AccountMeta(self.keypair.pubkey(), is_signer=True, is_writable=True),
            AccountMeta(tx.TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        ])
        return self._send([recover], [self.keypair]), str(nested), str(outer)

    def routed_deposit(self, deposit_address: str, *amounts: int) -> str:
        """A deposit made by CPI: the wallet calls a program (a router, as
        swaps and payment apps are) that moves DEAL from the wallet's token
        account into ``deposit_address`` with one ``transfer_checked`` per
        amount, invoked inside the wallet's one instruction. No program on
        the embedded chain makes a CPI transfer into an address it is given,
        so the wallet's signed transaction is recorded as a cluster records
        it (inner instructions, token balances, the accounts after), not
        run. Returns its signature."""
        source, destination = self.token_keypair.pubkey(), Pubkey.from_string(deposit_address)
        router = Instruction(_ROUTER, bytes([0]), [
            AccountMeta(source, is_signer=False, is_writable=True),
            AccountMeta(self.mint, is_signer=False, is_writable=False),
            AccountMeta(destination, is_signer=False, is_writable=True),
            AccountMeta(self.keypair.pubkey(), is_signer=True, is_writable=False),
            AccountMeta(tx.TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        ])
        blockhash, _ = self.chain.latest_blockhash()
        message = Message.new_with_blockhash([router], self.keypair.pubkey(), blockhash)
        keys = list(message.account_keys)
        named = tuple(keys.index(key) for key in (source, self.mint, destination,
                                                  self.keypair.pubkey()))
        inner = tuple(tx.InnerInstruction(
            0, keys.index(tx.TOKEN_PROGRAM_ID), named,
            struct.pack("<BQB", 12, amount, tx.DEAL_DECIMALS)) for amount in amounts)
        after = {address: _moved(self.chain, address, change) for address, change in (
            (source, -sum(amounts)), (destination, sum(amounts)))}
        transaction = Transaction([self.keypair], message, blockhash)
        return self.chain.record_observed(transaction, after, inner).signature

    def _open_token_account(self, mint: Pubkey | None = None) -> None:
        rent = self.chain.rent_lamports().token_account
        create = create_account(CreateAccountParams(
            from_pubkey=self.keypair.pubkey(), to_pubkey=self.token_keypair.pubkey(),
            lamports=rent, space=tx.TOKEN_ACCOUNT_LEN, owner=tx.TOKEN_PROGRAM_ID))
        initialize = Instruction(
            tx.TOKEN_PROGRAM_ID,
            struct.pack("<B", _INITIALIZE_ACCOUNT3) + bytes(self.keypair.pubkey()),
            [AccountMeta(self.token_keypair.pubkey(), is_signer=False, is_writable=True),
             AccountMeta(mint or self.mint, is_signer=False, is_writable=False)])
        self._send([create, initialize], [self.keypair, self.token_keypair])

    def _send(self, instructions: list[Instruction], signers: list[Keypair]) -> SendOutcome:
        blockhash, _ = self.chain.latest_blockhash()
        message = Message.new_with_blockhash(instructions, self.keypair.pubkey(), blockhash)
        return _landed(self.chain.process(Transaction(signers, message, blockhash)))


def _moved(chain: EmbeddedSolana, address: Pubkey, change: int) -> Account:
    """The token account at ``address`` with ``change`` added to its amount."""
    account = chain.get_account(address)
    assert account is not None, f"no token account at {address}"
    data = bytearray(account.data)
    (amount,) = struct.unpack_from("<Q", data, _AMOUNT_OFFSET)
    struct.pack_into("<Q", data, _AMOUNT_OFFSET, amount + change)
    return Account(account.lamports, bytes(data), account.owner, account.executable,
                   account.rent_epoch)


def _landed(outcome: SendOutcome) -> SendOutcome:
    if outcome.landed is None:
        raise AssertionError(f"the wallet's transaction did not land: {outcome}")
    return outcome
