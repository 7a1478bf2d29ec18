"""Logs as an operator reads them: every line of a real ``serve`` (uvicorn's
included) has a UTC timestamp, a level and the request id; JSON on demand;
the request id is the client's X-Request-ID (or a new one), answered back
and in error bodies."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from interface.wiring.logs import log_config, valid_request_id
from interface.wiring.settings import Settings
from tests.support.http import ServeProcess

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TEXT_LINE = re.compile(rf"^{STAMP} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+ \[[^\]\s]+\] ")
BANNER_LINES = 4  # serve's own banner on stdout in text: lines for a person


def log_lines(server: ServeProcess, banner_lines: int = BANNER_LINES) -> list[str]:
    stdout = server.stdout_path.read_text().splitlines()[banner_lines:]
    return [line for line in stdout + server.stderr_path.read_text().splitlines() if line]


def exchange(server: ServeProcess) -> tuple[httpx.Response, httpx.Response]:
    given = httpx.get(f"{server.url}/v1/system", headers={"X-Request-ID": "trace-42.a"})
    made = httpx.get(f"{server.url}/v1/system", headers={"X-Request-ID": "bad id\" injected"})
    return given, made


def test_text_lines_carry_time_level_logger_and_request_id(tmp_path):
    server = ServeProcess(tmp_path, {"DEALS_LOG_LEVEL": "info"})
    try:
        given, made = exchange(server)
    finally:
        server.terminate()
    assert given.headers["x-request-id"] == "trace-42.a"
    assert given.json()["error"]["request_id"] == "trace-42.a"
    new_id = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id) and made.json()["error"]["request_id"] == new_id
    lines = log_lines(server)
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    assert any("[trace-42.a]" in line and "GET /v1/system" in line for line in lines), lines
    assert any(f"[{new_id}]" in line for line in lines)
    assert not any("injected" in line for line in lines)


def test_json_lines_are_one_object_each(tmp_path):
    server = ServeProcess(tmp_path, {"DEALS_LOG_FORMAT": "json"})
    try:
        exchange(server)
    finally:
        server.terminate()
    records = [json.loads(line) for line in log_lines(server, banner_lines=0)]  # banner too
    assert records
    banner = [r for r in records if r["message"].startswith("Deals Ledger listening on ")]
    assert len(banner) == 1 and banner[0]["url"] == server.url and banner[0]["workers"] == 1
    token = (tmp_path / "var" / "api-key").read_text().strip()
    assert banner[0]["api_key_generated"] is True
    assert not any(token in line for line in log_lines(server, banner_lines=0))  # the key stays in its file
    for record in records:
        assert re.fullmatch(STAMP, record["time"]) and record["level"] in ("INFO", "WARNING")
        assert {"logger", "request_id", "message"} <= record.keys()
        assert "color_message" not in record
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any(r["request_id"] == "trace-42.a" for r in access), access
    assert any(r["message"] == "Application startup complete." and r["request_id"] == "-"
               for r in records)


def test_the_level_is_the_setting(capsys):
    logging.config.dictConfig(log_config(Settings(log_level="ERROR")))
    try:
        logging.getLogger("deals.test").warning("hidden")
        logging.getLogger("deals.test").error("shown")
        err = capsys.readouterr().err
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "root": {"level": "WARNING", "handlers": []}})
    assert "hidden" not in err and TEXT_LINE.match(err) and "shown" in err


@pytest.mark.parametrize("value, kept", [
    ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("req-1:2.3_x", True), ("", False),
    ("a b", False), ("x\ny", False), ("x" * 129, False), ("é", False),
])
def test_which_client_request_ids_are_kept(value, kept):
    assert valid_request_id(value) is kept


def test_settings_name_the_log_variables(monkeypatch):
    monkeypatch.setenv("DEALS_LOG_FORMAT", "JSON")
    monkeypatch.setenv("DEALS_LOG_LEVEL", "debug")
    settings = Settings.from_env()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
