"""The baseline of the HTTP scenarios: a bare FastAPI endpoint that validates
the same transfer body as ``POST /v1/transfers`` (the ledger's own request
model, so parsing costs the same) and does nothing else, served by uvicorn
with the same settings as ``deals-ledger serve``.

    python -m benchmarks.bare_server   # prints "listening on http://127.0.0.1:<port>"
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from interface.http.schemas.requests import TransferRequest


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
    config = uvicorn.Config(create_bare_app(), host="127.0.0.1", port=0, lifespan="on",
                            log_level="info", server_header=False)
    sock = config.bind_socket()
    host, port = sock.getsockname()[:2]
    print(f"bare baseline listening on http://{host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
