"""Solana chain adapters behind ``application.settlement.chain_port.ChainPort``.

- ``custody``: the custody authority's keypair, loaded or created safely.
- ``transactions``: pure solders code that both adapters share (addresses,
  instructions, packing movements into one transaction).
- ``embedded``: LiteSVM with a persistent index, the embedded chain.
- ``litesvm_adapter``: ``LiteSvmChain``, the port on an in-process chain.
- ``rpc_adapter``: ``RpcChain``, the port on a JSON-RPC endpoint.
"""
