"""The HTTP examples of the Markdown docs, parsed so a test can run them.

An example is a ```sh block holding one ``curl`` command (alone, its output
neither piped nor redirected: other blocks are prose), followed by an
```http block with the answer: the status line, any headers worth showing
(each is checked), a blank line and the JSON body. Examples of a document
run in order against one fresh ``deals-ledger serve``; ``$TOKEN`` and
``$(cat var/api-key)`` stand for its generated admin key and
``http://127.0.0.1:8000`` for its address.

An answer matches when the status, the shown headers and every field of the
body match, with the same keys at every level. What differs from run to run
is matched by shape: times (RFC 3339), positions (keys naming a position:
any whole number), ids the server chose (a UUID no request of the document
named), and the fields in ``BY_SHAPE`` (signatures, the mint, digests).
``<!-- eventually -->`` just before the example repeats it until it
matches, for what settles in the background (the chain); ``$POSITION`` in a
request is the latest ``position`` an answer gave.

``python -m tests.support.doc_examples FILE...`` runs a document against a
fresh server and writes the real answers into it (a new example's answer,
or with ``--rewrite`` every one that no longer matches): the test then holds
them to it.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DOCS_BASE = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
EVENTUALLY = "<!-- eventually -->"
EVENTUALLY_DEADLINE_S = 60.0
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
BY_SHAPE = frozenset({"signature", "mint", "token_account", "custody", "hash", "digest",
                      "root", "next_cursor", "cursor", "duration_s", "id", "finding_id", "slot",
                      "events_replayed", "checked_signatures", "request_id",
                      "anchors_checked", "backlog", "lag_events"})
"""Fields whose value is the run's own (chain keys and signatures, digests,
opaque cursors): the same JSON type is enough."""


@dataclass
class Example:
    document: Path
    line: int
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    eventually: bool
    answer: Answer | None
    answer_span: tuple[int, int] | None = None
    """Where the answer block sits in the document's text (to rewrite it)."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def examples(document: Path) -> list[Example]:
    """Every curl example of a Markdown document, in order."""
    text = document.read_text()
    blocks = list(FENCE.finditer(text))
    found = []
    for index, block in enumerate(blocks):
        if block.group(1) != "sh" or not _is_example(block.group(2)):
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        is_answer = following is not None and following.group(1) == "http"
        before = text[:block.start()].rstrip()
        example = _parse_curl(_command(block.group(2)))
        example.document, example.line = document, text.count("\n", 0, block.start()) + 1
        example.eventually = before.endswith(EVENTUALLY)
        if is_answer and following is not None:
            example.answer = parse_answer(following.group(2))
            example.answer_span = (following.start(), following.end())
        else:
            example.answer_span = (block.end(), block.end())
        found.append(example)
    return found


@dataclass
class PythonExample:
    """A ```python block, and the ```text block right after it: what it prints."""

    line: int
    code: str
    output: str | None


def python_examples(document: Path) -> list[PythonExample]:
    """Every Python example of a Markdown document, in order."""
    text = document.read_text()
    blocks = list(FENCE.finditer(text))
    found = []
    for index, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        output = following.group(2) if following is not None and following.group(1) == "text" \
            else None
        found.append(PythonExample(text.count("\n", 0, block.start()) + 1, block.group(2), output))
    return found


def _is_example(block: str) -> bool:
    """One curl command alone, its output not piped or redirected (a shell
    session that uses curl among other commands is prose, not an example)."""
    try:
        words = shlex.split(_command(block))
    except ValueError:  # unbalanced quotes: not a command we can run
        return False
    return (words[:1] == ["curl"] and words.count("curl") == 1
            and not {"|", ">", ">>", "&&", ";", "deals-ledger"} & set(words))


def _command(block: str) -> str:
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
    return " ".join(line.rstrip("\\").strip() for line in lines).strip()


def _parse_curl(command: str) -> Example:
    words = shlex.split(command)[1:]
    method, headers, body, url = None, {}, None, None
    while words:
        word = words.pop(0)
        if word in ("-X", "--request"):
            method = words.pop(0)
        elif word in ("-H", "--header"):
            name, _, value = words.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw"):
            body = words.pop(0)
        elif word.startswith("-"):
            continue  # -s, -S, -f: how curl prints, not what it sends
        else:
            url = word
    if url is None or not url.startswith(DOCS_BASE):
        raise ValueError(f"an example must call {DOCS_BASE}: {command}")
    method = method or ("POST" if body is not None else "GET")
    return Example(Path(), 0, method, url.removeprefix(DOCS_BASE), headers, body, False, None)


def parse_answer(block: str) -> Answer:
    head, _, body = block.partition("\n\n")
    lines = head.strip().splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, json.loads(body) if body.strip() else None)


@dataclass
class Session:
    """One document's run: the server, what the examples so far named."""

    base_url: str
    token: str
    known_ids: set[str] = field(default_factory=set)
    position: int | None = None
    """The latest ``position`` an answer gave: ``$POSITION`` in a request."""

    def send(self, example: Example) -> httpx.Response:
        headers = {name: self._substitute(value) for name, value in example.headers.items()}
        body = None if example.body is None else self._substitute(example.body)
        if body is not None and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
        response = httpx.request(example.method, self.base_url + self._substitute(example.path),
                                 headers=headers, content=body, timeout=30)
        answered = response.json() if response.content else None
        if isinstance(answered, dict) and isinstance(answered.get("position"), int):
            self.position = answered["position"]
        return response

    def _substitute(self, text: str) -> str:
        for placeholder in ("$(cat var/api-key)", "${TOKEN}", "$TOKEN"):
            text = text.replace(placeholder, self.token)
        return text.replace("$POSITION", str(self.position))

    def check(self, example: Example) -> list[str]:
        """Run ``example``; what differs from its documented answer (none: it matches)."""
        self.known_ids |= _uuids_in(example.path) | _uuids_in(example.body or "")
        deadline = time.monotonic() + (EVENTUALLY_DEADLINE_S if example.eventually else 0)
        while True:
            response = self.send(example)
            problems = differences(example.answer, response, self.known_ids)
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.2)  # polling a condition, bounded by the deadline above


def _uuids_in(text: str) -> set[str]:
    return set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))


def differences(answer: Answer | None, response: httpx.Response, known_ids: set[str]) -> list[str]:
    if answer is None:
        return ["no documented answer (an ```http block after the example)"]
    problems = []
    if response.status_code != answer.status:
        problems.append(f"status {response.status_code}, documented {answer.status}: "
                        f"{response.text[:300]}")
    for name, value in answer.headers.items():
        if response.headers.get(name) != value:
            problems.append(f"header {name}: {response.headers.get(name)!r}, documented {value!r}")
    actual = response.json() if response.content else None
    problems += _compare(answer.body, actual, "body", "", known_ids)
    return problems


def _compare(expected: Any, actual: Any, where: str, key: str, known: set[str]) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{where}: keys {sorted(actual)}, documented {sorted(expected)}"]
        return [p for name in expected
                for p in _compare(expected[name], actual[name], f"{where}.{name}", name, known)]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} items, documented {len(expected)}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in _compare(e, a, f"{where}[{i}]", key, known)]
    if _same_shape(expected, actual, key, known):
        return []
    return [f"{where}: {actual!r}, documented {expected!r}"]


def _same_shape(expected: Any, actual: Any, key: str, known: set[str]) -> bool:
    if expected == actual and type(expected) is type(actual):
        return True
    if key in BY_SHAPE or "position" in key:
        return type(expected) is type(actual)
    if isinstance(expected, str) and isinstance(actual, str):
        if TIME.match(expected):
            return bool(TIME.match(actual))
        if UUID.match(expected) and expected not in known:
            return bool(UUID.match(actual)) and actual not in known
    return False


def write_answers(document: Path, session: Session, *, rewrite: bool) -> int:
    """Run every example and write its real answer in: new ones, and with
    ``rewrite`` those whose documented answer no longer matches."""
    text = document.read_text()
    edits = []
    for example in examples(document):
        session.known_ids |= _uuids_in(example.path) | _uuids_in(example.body or "")
        response = session.send(example)
        stale = rewrite and bool(differences(example.answer, response, session.known_ids))
        if example.answer is None or stale:
            edits.append((example.answer_span, _answer_block(response, example.answer is None)))
    for (start, end), block in sorted(edits, key=lambda edit: edit[0], reverse=True):
        text = text[:start] + block + text[end:]
    document.write_text(text)
    return len(edits)


def _answer_block(response: httpx.Response, new: bool) -> str:
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    if response.headers.get("idempotent-replayed"):
        lines.append(f"Idempotent-Replayed: {response.headers['idempotent-replayed']}")
    body = json.dumps(response.json(), indent=2) if response.content else ""
    block = "```http\n" + "\n".join(lines) + "\n\n" + body + "\n```"
    return "\n\n" + block if new else block


def main(argv: list[str]) -> None:
    import tempfile

    from tests.support.http import ServeProcess

    rewrite = "--rewrite" in argv
    for name in (arg for arg in argv if not arg.startswith("--")):
        with tempfile.TemporaryDirectory() as workdir:
            server = ServeProcess(Path(workdir), {})
            try:
                token = (Path(workdir) / "var" / "api-key").read_text().strip()
                count = write_answers(Path(name), Session(server.url, token), rewrite=rewrite)
                print(f"{name}: {count} answers written")
            finally:
                server.terminate()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
