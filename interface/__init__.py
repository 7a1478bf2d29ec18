"""The interface layer: everything that meets the world outside the ledger.

``http/`` (the FastAPI app), ``cli/`` (``deals-ledger``), ``client/`` (the
Python client callers install, standing alone), ``webhooks/`` (subscribers'
deliveries), ``chain/`` (Solana adapters behind the settlement's chain
port), ``wiring/`` (the composition root: one way to build a ledger
process), and ``secret_file`` (the one reader and writer of files that hold
secrets). It imports application, projections and domain, never the
benchmark harness.
"""
