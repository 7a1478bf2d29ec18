"""Settling movements by hand, as the settler records it, for tests whose
ledger runs no settler (an admin reversal needs its original settled)."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID, uuid4

from application import commands as c
from application.authority import INTERNAL

TX = base64.b64encode(b"signed transaction bytes").decode()


def settle_with(writer: Any, *transfer_ids: UUID) -> str:
    """Record the movements submitted and settled on chain through
    ``writer`` (a ``CommandWriter``); answers the signature."""
    signature = f"sig-{uuid4().hex}"
    writer.execute(c.RecordSubmission(signature, 300, TX, transfer_ids), authority=INTERNAL)
    writer.execute(c.MarkSettled(signature, 7, transfer_ids), authority=INTERNAL)
    return signature


def settle_through(api: Any, *transfer_ids: str) -> str:
    """The same through a test service's writer, ids as the API gives them."""
    return settle_with(api.service.writer, *(UUID(str(i)) for i in transfer_ids))
