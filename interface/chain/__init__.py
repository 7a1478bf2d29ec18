"""Solana chain adapters behind ``application.settlement.chain_port.ChainPort``.

- ``custody``: the custody keys (which key holds which power), loaded or
  created safely.
- ``rotation``: moving a power to a new key on chain (SetAuthority), resumable.
- ``transactions``: pure solders code that both adapters share (addresses,
  instructions, packing movements into one transaction).
- ``embedded``: LiteSVM with a persistent index, the embedded chain.
- ``litesvm_adapter``: ``LiteSvmChain``, the port on an in-process chain.
- ``rpc_adapter``: ``RpcChain``, the port on a JSON-RPC endpoint.
"""
