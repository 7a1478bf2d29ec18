"""How every process of the ledger logs: one line per record on stderr (the
access log on stdout, as uvicorn does), each with a UTC timestamp, the
level, the logger and the request id of the request it belongs to ("-"
outside a request); ``DEALS_LOG_FORMAT=json`` makes each line one JSON
object (python-json-logger), for a log shipper.

The request id is asgi-correlation-id's: the ``X-Request-ID`` a client or a
proxy sent (when it looks like an id), else a new one; it is answered in the
same header and in error bodies, so a client can quote it. Records from the
writer and other background threads carry "-": a group commit serves many
requests at once.
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any

from interface.wiring.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger",
              "correlation_id": "request_id"}
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""A request id taken from a client: an id, never text that could forge a log line."""
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
ROLE_LOGGER = "deals_ledger.role"
"""A worker role's start line ("projector running; ..."): said at INFO, as
uvicorn's start lines are, so it shows at the default level, as a record
(a JSON object with DEALS_LOG_FORMAT=json) like every other line."""


class UtcFormatter(logging.Formatter):
    """Timestamps as RFC 3339 UTC with milliseconds, whatever the host's zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return utc_stamp(record)


def utc_stamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


def json_formatter() -> logging.Formatter:
    """python-json-logger's formatter with the text format's times and names."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    class UtcJsonFormatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return utc_stamp(record)

    return UtcJsonFormatter(JSON_FIELDS, rename_fields=JSON_NAMES,
                            reserved_attrs=[*RESERVED_ATTRS, "color_message"])


def log_config(settings: Settings, *, verbose: bool = False) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a process (uvicorn takes it too).

    Level: DEALS_LOG_LEVEL for everything; unset, the ledger's own loggers
    say only warnings (INFO with ``-v``) and uvicorn's its start, stop and
    access lines, as before."""
    own = settings.log_level or ("INFO" if verbose else "WARNING")
    uvicorn_level = settings.log_level or "INFO"
    formatter: dict[str, Any] = (
        {"()": json_formatter} if settings.log_format == "json"
        else {"()": UtcFormatter, "fmt": TEXT_FORMAT}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "asgi_correlation_id.CorrelationIdFilter",
                                   "default_value": "-"}},
        "formatters": {"line": formatter},
        "handlers": {"stderr": {**handler, "stream": "ext://sys.stderr"},
                     "stdout": {**handler, "stream": "ext://sys.stdout"}},
        "root": {"level": own, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": uvicorn_level, "handlers": ["stderr"], "propagate": False},
            "uvicorn.error": {"level": uvicorn_level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": uvicorn_level, "handlers": ["stdout"], "propagate": False},
            ROLE_LOGGER: {"level": uvicorn_level},
            # a client's malformed X-Request-ID is replaced; a line for each would be
            # a way to flood the log
            "asgi_correlation_id": {"level": "ERROR"},
        },
    }


def configure_logging(settings: Settings, *, verbose: bool = False) -> None:
    logging.config.dictConfig(log_config(settings, verbose=verbose))


def valid_request_id(value: str) -> bool:
    """Whether a client's X-Request-ID is kept (else a new id replaces it)."""
    return REQUEST_ID.fullmatch(value) is not None
