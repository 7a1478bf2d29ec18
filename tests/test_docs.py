"""Every HTTP example in the README and docs/ runs against a real
``deals-ledger serve`` and answers what the page says (tests/support/
doc_examples.py says how an example is written and matched)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.doc_examples import DocServer, examples, python_examples
from tests.support.http import ServeProcess

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MUST_HAVE_EXAMPLES = {"README.md", "api.md"}
PYTHON_DOCUMENTS = [document for document in DOCUMENTS if python_examples(document)]
DOCUMENTED_URL = "http://127.0.0.1:8000"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_http_example_answers_as_documented(document, tmp_path):
    found = examples(document)
    if not found:
        assert document.name not in MUST_HAVE_EXAMPLES, f"{document.name} lost its examples"
        return
    server = DocServer(tmp_path)
    try:
        session = server.session()
        failures = [f"{document.name}:{example.line}: {problem}"
                    for example in found for problem in session.check(example)]
    finally:
        server.terminate()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("document", PYTHON_DOCUMENTS, ids=lambda path: path.name)
def test_every_python_example_prints_what_the_page_shows(document, tmp_path, monkeypatch):
    """The ```python blocks run in order, in one namespace, against a fresh
    serve (its URL for the documented one, its generated key as
    LEDGER_TOKEN); each prints exactly the ```text block under it."""
    import contextlib
    import io

    server = ServeProcess(tmp_path, {})
    namespace: dict = {"__name__": "__doc_example__"}
    try:
        monkeypatch.setenv("LEDGER_TOKEN", (tmp_path / "var" / "api-key").read_text().strip())
        for example in python_examples(document):
            printed = io.StringIO()
            code = compile(example.code.replace(DOCUMENTED_URL, server.url),
                           f"{document.name}:{example.line}", "exec")
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)
            if example.output is not None:
                assert printed.getvalue() == example.output, f"{document.name}:{example.line}"
    finally:
        for value in namespace.values():
            if hasattr(value, "close") and type(value).__name__ == "LedgerClient":
                value.close()
        server.terminate()


def test_the_client_guide_keeps_its_python_examples():
    assert len(python_examples(REPO / "docs" / "client.md")) >= 5


def test_every_route_has_a_worked_example(tmp_path):
    """The API guide's promise, "a worked request and answer for every
    command and query": a route no example of the README or docs/ calls
    (with that method) fails here."""
    from fastapi.routing import APIRoute

    from interface.http.app import create_app
    from interface.http.auth import parse_api_keys
    from interface.wiring.settings import Settings

    app = create_app(Settings(data_dir=tmp_path / "var"), keyring=parse_api_keys("a:t:admin"))
    calls = [(example.method, example.path.split("?")[0])
             for document in DOCUMENTS for example in examples(document)]
    missing = []
    for route in (route for route in app.routes if isinstance(route, APIRoute)):
        template = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$")
        missing += [f"{method} {route.path}" for method in sorted(route.methods)
                    if not any(m == method and template.match(path) for m, path in calls)]
    assert not missing, missing


def test_a_text_excerpt_and_json_text_are_matched_as_documented():
    """/metrics' excerpt: every line must be there, a sample's value only a
    number; a proof's event state (JSON text) is compared as JSON."""
    import httpx

    from tests.support.doc_examples import Answer, Excerpt, differences

    body = "# TYPE x_total counter\nx_total{a=\"1\"} 3.0\ny 1.0\n"
    excerpt = Answer(200, {}, Excerpt(["# TYPE x_total counter", 'x_total{a="1"} 9.0']))
    assert differences(excerpt, httpx.Response(200, text=body), set()) == []
    for documented in (['x_total{a="2"} 3.0'], ["# TYPE x_total gauge"], ["z 1.0"]):
        answer = Answer(200, {}, Excerpt(documented))
        assert differences(answer, httpx.Response(200, text=body), set()), documented
    state = Answer(200, {}, {"state": '{"amount": 5, "at": "2026-01-01T00:00:00Z"}'})
    same = httpx.Response(200, json={"state": '{"amount": 5, "at": "2027-01-01T00:00:00Z"}'})
    other = httpx.Response(200, json={"state": '{"amount": 6, "at": "2026-01-01T00:00:00Z"}'})
    assert differences(state, same, set()) == [] and differences(state, other, set())


def test_an_answer_that_differs_is_reported(tmp_path):
    """The matcher is strict where the docs promise: a changed amount, a
    missing field and a wrong status are each a failure."""
    import httpx

    from tests.support.doc_examples import Answer, differences

    documented = Answer(201, {}, {"amount": "1", "position": 3, "at": "2026-01-01T00:00:00Z"})
    same_shape = httpx.Response(201, json={"amount": "1", "position": 9,
                                           "at": "2027-02-02T01:01:01.5Z"})
    assert differences(documented, same_shape, set()) == []
    for status, body in [(201, {"amount": "2", "position": 3, "at": "2026-01-01T00:00:00Z"}),
                         (201, {"amount": "1", "position": 3}),
                         (200, {"amount": "1", "position": 3, "at": "2026-01-01T00:00:00Z"}),
                         (201, {"amount": "1", "position": "3", "at": "2026-01-01T00:00:00Z"})]:
        assert differences(documented, httpx.Response(status, json=body), set()), body


TRANSCRIPT = re.compile(r"^```\n(\$ .*?)^```$", re.S | re.M)


def transcripts(document: Path) -> list[tuple[str, str]]:
    """Shell sessions in a document: a ``$ command`` line, then its output."""
    found = []
    for block in TRANSCRIPT.finditer(document.read_text()):
        command, _, output = block.group(1).partition("\n")
        found.append((command.removeprefix("$ "), output))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_shell_transcript_prints_what_the_page_shows(document, tmp_path):
    """``$ deals-ledger ...`` sessions run in an empty folder with the
    repository's deals-ledger first on PATH and no DEALS_* settings."""
    if document.name == "operations.md":
        assert len(transcripts(document)) >= 2, "operations.md lost its transcripts"
    bin_dir = Path(sys.executable).parent
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEALS_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for command, output in transcripts(document):
        assert command.split()[0].startswith("DEALS_") or command.startswith("deals-ledger")
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.stdout + result.stderr == output, (document.name, command)


def test_every_error_code_is_in_the_api_guide_with_its_status():
    """The guide's table is the callers' list of codes: one the code can
    answer but the table lacks (or lists with another status) fails here."""
    from interface.http.errors import STATUS_BY_CODE

    guide = (REPO / "docs" / "api.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", guide, flags=re.MULTILINE))
    assert rows == {code: str(status) for code, status in STATUS_BY_CODE.items()}


SHELL_VARIABLE = re.compile(r"\$([A-Z][A-Z_]*)\b")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_shell_variable_of_an_example_is_said_where_it_comes_from(document):
    """A reader copying a curl example must learn what ``$POSITION`` or
    ``$WEBHOOK_ID`` is: each variable a ```sh block uses is named in the
    page's prose (``TOKEN`` is set by the page's first block)."""
    from tests.support.doc_examples import FENCE

    text = document.read_text()
    shell = "".join(body for kind, body in FENCE.findall(text) if kind == "sh")
    prose = FENCE.sub("", text)
    used = set(SHELL_VARIABLE.findall(shell)) - {"TOKEN"}
    defined = set(re.findall(r"^([A-Z][A-Z_]*)=", shell, re.M))
    unsaid = sorted(name for name in used - defined if f"{name}=" not in prose
                    and f"`{name}`" not in prose and f"`${name}`" not in prose)
    assert not unsaid, f"{document.name}: {unsaid} used in examples, never said where from"


def test_no_document_offers_the_stream_to_a_browser_eventsource():
    """The stream takes only the bearer header, which an EventSource cannot
    send: a page naming EventSource says it cannot be used."""
    for document in DOCUMENTS:
        for paragraph in document.read_text().split("\n\n"):
            if "EventSource" in paragraph:
                assert "cannot" in paragraph, f"{document.name}: {paragraph[:80]!r}"
