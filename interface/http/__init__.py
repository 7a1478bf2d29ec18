"""The HTTP API of shared/API.md: a FastAPI app over the ledger service.

``app`` builds the application, ``deps`` holds the dependency aliases the
routers use, ``errors`` maps every refusal to its status code in one place,
``routers/`` has one module per resource.
"""
