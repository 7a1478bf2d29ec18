"""Every HTTP example in the README and docs/ runs against a real
``deals-ledger serve`` and answers what the page says (tests/support/
doc_examples.py says how an example is written and matched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_examples import Session, examples
from tests.support.http import ServeProcess

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MUST_HAVE_EXAMPLES = {"README.md", "api.md"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_http_example_answers_as_documented(document, tmp_path):
    found = examples(document)
    if not found:
        assert document.name not in MUST_HAVE_EXAMPLES, f"{document.name} lost its examples"
        return
    server = ServeProcess(tmp_path, {})
    try:
        session = Session(server.url, (tmp_path / "var" / "api-key").read_text().strip())
        failures = [f"{document.name}:{example.line}: {problem}"
                    for example in found for problem in session.check(example)]
    finally:
        server.terminate()
    assert not failures, "\n".join(failures)


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
