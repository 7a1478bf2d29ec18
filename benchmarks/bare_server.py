"""The baseline of the HTTP scenarios: a bare FastAPI endpoint that validates
the same transfer body as ``POST /v1/transfers`` (the ledger's own request
model, so parsing costs the same) and does nothing else, served by uvicorn
with the same settings as ``deals-ledger serve``.

    python -m benchmarks.bare_server          # prints "listening on http://127.0.0.1:<port>"
    python -m benchmarks.bare_server --edge   # through the ledger's edge (interface.http.edge)

``--edge`` serves it with ``deals-ledger serve``'s own uvicorn settings
(``interface.http.server.uvicorn_config``: the edge protocol, no proxy
headers), for ``benchmarks.edge_overhead``; without it, stock uvicorn.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from interface.http.schemas.requests import TransferRequest
from interface.http.server import uvicorn_config
from interface.wiring.settings import Settings


def create_bare_app() -> FastAPI:
    app = FastAPI(title="bare baseline")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/transfers", status_code=201)
    async def transfer(body: TransferRequest) -> dict[str, str]:
        return {"transfer_id": str(body.transfer_id), "status": "pending"}

    return app


def main() -> None:
    if "--edge" in sys.argv[1:]:
        config = uvicorn_config(create_bare_app(), Settings(), host="127.0.0.1", port=0,
                                log_level="info")
    else:
        config = uvicorn.Config(create_bare_app(), host="127.0.0.1", port=0, lifespan="on",
                                log_level="info", server_header=False)
    sock = config.bind_socket()
    host, port = sock.getsockname()[:2]
    print(f"bare baseline listening on http://{host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
