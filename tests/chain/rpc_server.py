"""A Solana JSON-RPC 2.0 server for tests, backed by an ``EmbeddedSolana``.

It answers the methods ``RpcChain`` uses in the wire format real nodes use,
so the real ``AsyncClient`` and solders' parsers are exercised, including
the error objects (a -32002 preflight failure carries its ``data`` with
``err``, ``logs``... or the client's parser fails). Fault switches: RPC
errors for the next N calls of a method, answers held back past the client's
timeout, and sent transactions dropped (signature answered, never processed).

Runs on a free loopback port in a background thread; ``stop`` releases held
answers and joins the thread.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.pubkey import Pubkey
from solders.transaction import Transaction

from interface.chain import transactions as tx
from interface.chain.embedded import EmbeddedSolana, Rejection
from interface.chain.embedded_store import LandedTransaction, TokenBalance

API_VERSION = "2.1.0"
HELD_ANSWER_S_MAX = 30.0  # a held answer is released by stop() long before this
REQUEST_BYTES_MAX = 1_000_000
PREFLIGHT_FAILURE = -32002
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
CLUSTER_BLOCKS_PER_HEIGHT_READ = 50
"""For a server whose chain should move on like a cluster's (a settler's
start waits for 150 blocks: a few reads)."""

_PREFLIGHT_MESSAGES = {
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
}


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def wire(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class SolanaRpcServer:
    """Start with ``start()``; ``url`` is then the endpoint."""

    def __init__(self, chain: EmbeddedSolana, *, blocks_per_height_read: int = 0) -> None:
        """``blocks_per_height_read``: each getBlockHeight answer moves the
        chain on by that many blocks first, as a cluster's blocks go on
        while a client waits (the embedded chain's move only when a
        transaction lands): a settler that waits for blockhash expiry at its
        start, in a process of its own, gets past it (0: they stand still)."""
        self.chain = chain
        self.blocks_per_height_read = blocks_per_height_read
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._errors: dict[str, list[RpcError]] = {}
        self._holds: Counter[str] = Counter()
        self._released = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> SolanaRpcServer:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._http is not None, "server not started"
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._released.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- fault switches -------------------------------------------------------

    def fail_next(
        self,
        method: str,
        count: int = 1,
        code: int = -32603,
        message: str = "Internal error",
        data: object = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with an RPC error.
        Give ``data`` where real nodes send it (-32005 carries
        ``{"numSlotsBehind": n}``): solders' parser panics without it."""
        with self._lock:
            queued = self._errors.setdefault(method, [])
            queued.extend(RpcError(code, message, data) for _ in range(count))

    def hold_next(self, method: str, count: int = 1) -> None:
        """Hold the next ``count`` answers of ``method`` until ``stop`` (past
        any client timeout a test uses)."""
        with self._lock:
            self._holds[method] += count

    def drop_next_transactions(self, count: int = 1) -> None:
        self.chain.drop_next_transactions(count)

    # --- dispatch -------------------------------------------------------------

    def answer(self, request: dict[str, Any]) -> dict[str, object]:
        method = str(request.get("method"))
        reply: dict[str, object] = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            reply["result"] = self._dispatch(method, request.get("params") or [])
        except RpcError as error:
            reply["error"] = error.wire()
        return reply

    def _dispatch(self, method: str, params: list[Any]) -> object:
        self.calls[method] += 1
        self._apply_faults(method)
        handler = _METHODS.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        return handler(self, params)

    def _apply_faults(self, method: str) -> None:
        with self._lock:
            queued = self._errors.get(method)
            error = queued.pop(0) if queued else None
            hold = self._holds[method] > 0
            if hold:
                self._holds[method] -= 1
        if hold:
            self._released.wait(HELD_ANSWER_S_MAX)
        if error is not None:
            raise error

    def _context(self, value: object) -> dict[str, object]:
        return {"context": {"slot": self.chain.slot, "apiVersion": API_VERSION}, "value": value}

    # --- methods --------------------------------------------------------------

    def get_latest_blockhash(self, params: list[Any]) -> object:
        blockhash, last_valid = self.chain.latest_blockhash()
        return self._context({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def get_block_height(self, params: list[Any]) -> object:
        if self.blocks_per_height_read:
            self.chain.advance_slots(self.blocks_per_height_read)
        return self.chain.block_height()

    def get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> object:
        size = int(params[0])
        if size < 0:
            raise RpcError(INVALID_PARAMS, "a size is a whole number of bytes")
        return self.chain.rent_exempt_lamports(size)

    def get_balance(self, params: list[Any]) -> object:
        account = self.chain.get_account(_pubkey(params[0]))
        return self._context(0 if account is None else account.lamports)

    def get_account_info(self, params: list[Any]) -> object:
        account = self.chain.get_account(_pubkey(params[0]))
        if account is None:
            return self._context(None)
        data = bytes(account.data)
        return self._context(
            {
                "data": [base64.b64encode(data).decode(), "base64"],
                "executable": account.executable,
                "lamports": account.lamports,
                "owner": str(account.owner),
                "rentEpoch": account.rent_epoch,
                "space": len(data),
            }
        )

    def get_token_account_balance(self, params: list[Any]) -> object:
        account = self.chain.get_account(_pubkey(params[0]))
        if account is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find account")
        if not tx.is_token_account(account.owner, bytes(account.data)):
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        return self._context(_ui_token_amount(tx.token_account_amount(bytes(account.data))))

    def send_transaction(self, params: list[Any]) -> object:
        config = params[1] if len(params) > 1 else {}
        if config.get("encoding", "base58") != "base64":
            raise RpcError(INVALID_PARAMS, "this test server reads base64 transactions only")
        transaction = Transaction.from_bytes(base64.b64decode(params[0]))
        outcome = self.chain.process(transaction, preflight=not config.get("skipPreflight"))
        if outcome.rejection is not None:
            raise _preflight_failure(outcome.rejection)
        return outcome.signature

    def simulate_transaction(self, params: list[Any]) -> object:
        config = params[1] if len(params) > 1 else {}
        if config.get("encoding", "base58") != "base64":
            raise RpcError(INVALID_PARAMS, "this test server reads base64 transactions only")
        transaction = Transaction.from_bytes(base64.b64decode(params[0]))
        units, rejection = self.chain.simulate(transaction)
        return self._context(_simulation(units, rejection))

    def get_signature_statuses(self, params: list[Any]) -> object:
        statuses = [_signature_status(self.chain.landed(str(sig))) for sig in params[0]]
        return self._context(statuses)

    def get_signatures_for_address(self, params: list[Any]) -> object:
        config = params[1] if len(params) > 1 else {}
        page = self.chain.signatures_for_address(
            str(params[0]), before=config.get("before"), limit=int(config.get("limit") or 1000)
        )
        return [_signature_entry(landed) for landed in page]

    def get_transaction(self, params: list[Any]) -> object:
        config = params[1] if len(params) > 1 else {}
        if config.get("encoding") != "base64":
            raise RpcError(INVALID_PARAMS, "this test server answers base64 transactions only")
        landed = self.chain.landed(str(params[0]))
        return None if landed is None else _transaction_with_meta(landed)

    def get_health(self, params: list[Any]) -> object:
        return "ok"


_METHODS: dict[str, Callable[[SolanaRpcServer, list[Any]], object]] = {
    "getLatestBlockhash": SolanaRpcServer.get_latest_blockhash,
    "getBlockHeight": SolanaRpcServer.get_block_height,
    "getMinimumBalanceForRentExemption": SolanaRpcServer.get_minimum_balance_for_rent_exemption,
    "getAccountInfo": SolanaRpcServer.get_account_info,
    "getBalance": SolanaRpcServer.get_balance,
    "getTokenAccountBalance": SolanaRpcServer.get_token_account_balance,
    "sendTransaction": SolanaRpcServer.send_transaction,
    "simulateTransaction": SolanaRpcServer.simulate_transaction,
    "getSignatureStatuses": SolanaRpcServer.get_signature_statuses,
    "getSignaturesForAddress": SolanaRpcServer.get_signatures_for_address,
    "getTransaction": SolanaRpcServer.get_transaction,
    "getHealth": SolanaRpcServer.get_health,
}


# --- wire shapes --------------------------------------------------------------


def _pubkey(value: object) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from None


def _ui_amount_string(amount: int) -> str:
    whole, fraction = divmod(amount, 10**tx.DEAL_DECIMALS)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:0{tx.DEAL_DECIMALS}d}".rstrip("0")


def _ui_token_amount(amount: int) -> dict[str, object]:
    # uiAmount (a float) is deprecated and may be null; we never make floats of money
    return {
        "amount": str(amount),
        "decimals": tx.DEAL_DECIMALS,
        "uiAmount": None,
        "uiAmountString": _ui_amount_string(amount),
    }


def _preflight_failure(rejection: Rejection) -> RpcError:
    reason = _PREFLIGHT_MESSAGES.get(rejection.error, rejection.error)
    data = _simulation(rejection.units_consumed, rejection)
    return RpcError(PREFLIGHT_FAILURE, f"Transaction simulation failed: {reason}", data)


def _simulation(units: int, rejection: Rejection | None) -> dict[str, object]:
    """A simulation result as nodes write it (simulateTransaction's value,
    a preflight failure's data)."""
    return {
        "accounts": None,
        "err": None if rejection is None else rejection.error_wire,
        "innerInstructions": None,
        "loadedAccountsDataSize": 0,
        "logs": [] if rejection is None else list(rejection.logs),
        "replacementBlockhash": None,
        "returnData": None,
        "unitsConsumed": units,
    }


def _status_field(landed: LandedTransaction) -> dict[str, object]:
    return {"Ok": None} if landed.error_wire is None else {"Err": landed.error_wire}


def _signature_status(landed: LandedTransaction | None) -> object:
    if landed is None:
        return None
    return {
        "slot": landed.slot,
        "confirmations": None,  # null = rooted, as nodes say for finalized
        "err": landed.error_wire,
        "status": _status_field(landed),
        "confirmationStatus": "finalized",
    }


def _memo_field(memos: tuple[str, ...]) -> str | None:
    if not memos:
        return None
    return "; ".join(f"[{len(memo.encode())}] {memo}" for memo in memos)


def _signature_entry(landed: LandedTransaction) -> dict[str, object]:
    return {
        "signature": landed.signature,
        "slot": landed.slot,
        "err": landed.error_wire,
        "memo": _memo_field(landed.memos),
        "blockTime": None,
        "confirmationStatus": "finalized",
    }


def _token_balance(balance: TokenBalance) -> dict[str, object]:
    return {
        "accountIndex": balance.account_index,
        "mint": balance.mint,
        "owner": balance.owner,
        "programId": str(tx.TOKEN_PROGRAM_ID),
        "uiTokenAmount": _ui_token_amount(balance.amount),
    }


def _inner_instructions(landed: LandedTransaction) -> list[dict[str, object]]:
    """``meta.innerInstructions`` as a node gives it with a base64-encoded
    transaction: one group per top-level instruction that invoked any,
    compiled (indexes into the message's keys, base58 data)."""
    groups: dict[int, list[dict[str, object]]] = {}
    for inner in landed.inner_instructions:
        groups.setdefault(inner.outer, []).append({
            "programIdIndex": inner.program_id_index, "accounts": list(inner.accounts),
            "data": _base58(inner.data), "stackHeight": 2,
        })
    return [{"index": outer, "instructions": found} for outer, found in sorted(groups.items())]


def _base58(data: bytes) -> str:
    number, digits = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        digits = _BASE58[digit] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _transaction_with_meta(landed: LandedTransaction) -> dict[str, object]:
    return {
        "slot": landed.slot,
        "blockTime": None,
        "version": "legacy",
        "transaction": [base64.b64encode(landed.raw).decode(), "base64"],
        "meta": {
            "err": landed.error_wire,
            "status": _status_field(landed),
            "fee": landed.fee,
            "preBalances": list(landed.pre_lamports),
            "postBalances": list(landed.post_lamports),
            "innerInstructions": _inner_instructions(landed),
            "logMessages": list(landed.logs),
            "preTokenBalances": [_token_balance(b) for b in landed.pre_token_balances],
            "postTokenBalances": [_token_balance(b) for b in landed.post_token_balances],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": landed.compute_units,
        },
    }


# --- HTTP ---------------------------------------------------------------------


def _handler_for(server: SolanaRpcServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= REQUEST_BYTES_MAX:
                self._reply(413, b"")
                return
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError:
                body = {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32700, "message": "Parse error"},
                }
                self._reply(200, json.dumps(body).encode())
                return
            self._reply(200, json.dumps(server.answer(request)).encode())

        def _reply(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to tell it

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output quiet

    return Handler
