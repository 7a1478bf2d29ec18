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
request is the latest ``position`` an answer gave, ``$WEBHOOK_ID`` the latest
answer's ``webhook_id``, ``$FINDING_ID`` the first unresolved
``finding_id`` of the latest answer that listed findings.
``<!-- setup: NAME -->`` just before an example runs the named step of
``SETUPS`` first: what no HTTP request can do (the chain changed behind the
ledger's back), done to the server's data dir while it is stopped.

An answer whose body is not JSON (``/metrics``) is an excerpt: each of its
lines must be a line of the real body, a sample's value matched by shape
(a number).

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
from collections.abc import Callable
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
BY_SHAPE = frozenset({"signature", "mint", "token_account", "deposit_address", "custody",
                      "hash", "digest",
                      "root", "next_cursor", "cursor", "duration_s", "id", "finding_id", "slot",
                      "events_replayed", "checked_signatures", "request_id",
                      "anchors_checked", "backlog", "lag_events",
                      "ledger_id", "canonical_bytes", "sequence", "tree_size", "leaf_index",
                      "path", "previous_root", "memo", "signer", "detail", "next_after",
                      "lamports"})
"""Fields whose value is the run's own (chain keys and signatures, digests,
opaque cursors, how many anchors and leaves there are so far, the fee
payer's SOL after the run's fees): the same JSON
type is enough (for a list, that it is a list)."""
SETUP = re.compile(r"<!-- setup: ([\w-]+) -->$")
SAMPLE = re.compile(r"^(?P<series>[a-zA-Z_:][\w:]*(\{[^}]*\})?) (?P<value>\S+)$")


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
    setup: str | None = None
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
        example = _parse_curl(_command(block.group(2)))
        example.document, example.line = document, text.count("\n", 0, block.start()) + 1
        example.eventually, example.setup = _markers(text[:block.start()])
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
def _markers(before: str) -> tuple[bool, str | None]:
    """The ``eventually`` and ``setup`` comments just before an example (either order)."""
    eventually, setup = False, None
    while True:
        before = before.rstrip()
        if before.endswith(EVENTUALLY):
            eventually, before = True, before.removesuffix(EVENTUALLY)
        elif match := SETUP.search(before):
            setup, before = match.group(1), before[:match.start()]
        else:
            return eventually, setup


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
    if not body.strip():
        return Answer(status, headers, None)
    try:
        return Answer(status, headers, json.loads(body))
    except json.JSONDecodeError:  # an excerpt of a text answer (/metrics)
        return Answer(status, headers, Excerpt(body.strip().splitlines()))


@dataclass
class Excerpt:
    """Lines of a text answer that the real one must hold."""

    lines: list[str]


@dataclass
class Session:
    """One document's run: the server, what the examples so far named."""

    base_url: str
    token: str
    known_ids: set[str] = field(default_factory=set)
    position: int | None = None
    """The latest ``position`` an answer gave: ``$POSITION`` in a request."""
    finding_id: str | None = None
    """``$FINDING_ID``: the first finding of the latest answer that had any."""
    webhook_id: str | None = None
    """``$WEBHOOK_ID``: the ``webhook_id`` of the latest answer that had one."""
    setup: Callable[[str], str] | None = None
    """Runs a named setup step (``SETUPS``); answers the server's new address."""

    def send(self, example: Example) -> httpx.Response:
        headers = {name: self._substitute(value) for name, value in example.headers.items()}
        body = None if example.body is None else self._substitute(example.body)
        if body is not None and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
        response = httpx.request(example.method, self.base_url + self._substitute(example.path),
                                 headers=headers, content=body, timeout=30)
        answered = _json_of(response)
        if isinstance(answered, dict) and isinstance(answered.get("position"), int):
            self.position = answered["position"]
        self.finding_id = _first_finding(answered) or self.finding_id
        if isinstance(answered, dict) and isinstance(answered.get("webhook_id"), str):
            self.webhook_id = answered["webhook_id"]
        return response

    def prepare(self, example: Example) -> None:
        """Run the example's setup step, if it names one."""
        if example.setup is not None:
            if self.setup is None:
                raise ValueError(f"no setup steps here for {example.setup!r}")
            self.base_url = self.setup(example.setup)

    def _substitute(self, text: str) -> str:
        for placeholder in ("$(cat var/api-key)", "${TOKEN}", "$TOKEN"):
            text = text.replace(placeholder, self.token)
        text = text.replace("$FINDING_ID", str(self.finding_id))
        text = text.replace("$WEBHOOK_ID", str(self.webhook_id))
        return text.replace("$POSITION", str(self.position))

    def check(self, example: Example) -> list[str]:
        """Run ``example``; what differs from its documented answer (none: it matches)."""
        self.known_ids |= _uuids_in(example.path) | _uuids_in(example.body or "")
        self.prepare(example)
        deadline = time.monotonic() + (EVENTUALLY_DEADLINE_S if example.eventually else 0)
        while True:
            response = self.send(example)
            problems = differences(example.answer, response, self.known_ids)
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.2)  # polling a condition, bounded by the deadline above


def _json_of(response: httpx.Response) -> Any:
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return None
    return response.json()


def _first_finding(answer: Any) -> str | None:
    """The first ``finding_id`` in an answer, depth first, in document order,
    of a finding not yet resolved (``adjusted_by`` null or absent), so a
    list that still shows a resolved one names the next to act on."""
    if isinstance(answer, dict):
        if isinstance(answer.get("finding_id"), str) and answer.get("adjusted_by") is None:
            return str(answer["finding_id"])
        answer = list(answer.values())
    if isinstance(answer, list):
        for item in answer:
            if (found := _first_finding(item)) is not None:
                return found
    return None


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
    if isinstance(answer.body, Excerpt):
        return problems + _excerpt_differences(answer.body, response.text)
    actual = response.json() if response.content else None
    problems += _compare(answer.body, actual, "body", "", known_ids)
    return problems


def _excerpt_differences(excerpt: Excerpt, text: str) -> list[str]:
    """Each documented line must be a line of the answer; a sample's value
    may differ (a count, a latency), but must be a number."""
    lines = set(text.splitlines())
    samples = {}
    for line in lines:
        if match := SAMPLE.match(line):
            samples[match.group("series")] = match.group("value")
    problems = []
    for line in excerpt.lines:
        match = SAMPLE.match(line) if not line.startswith("#") else None
        if match is None:
            if line not in lines:
                problems.append(f"line not in the answer: {line}")
        elif not _is_number(samples.get(match.group("series"))):
            problems.append(f"no sample {match.group('series')} in the answer")
    return problems


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def _compare(expected: Any, actual: Any, where: str, key: str, known: set[str]) -> list[str]:
    if key in BY_SHAPE and type(expected) is type(actual):
        return []
    if isinstance(expected, str) and isinstance(actual, str) and expected.startswith("{"):
        try:  # JSON text (a proof's event state): compared as the JSON it holds
            return _compare(json.loads(expected), json.loads(actual), where, key, known)
        except json.JSONDecodeError:
            pass
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


DOCS_ENV = {"DEALS_ANCHOR_EVERY_EVENTS": "1", "DEALS_DEPOSIT_SCAN_INTERVAL_S": "1",
            "DEALS_WITHDRAWAL_WALLET_COOLDOWN_S": "0"}
"""The documents' server anchors after every command (docs/api.md says so),
so a proof's example has an anchor to show within seconds; it scans the
deposit addresses every second, so a deposit's example is credited soon;
a wallet it connects receives withdrawals at once (docs/api.md says so)."""


def drift_the_chain(data_dir: Path) -> None:
    """Move 0.00000001 DEAL from the treasury to Alice on the embedded chain
    with the custody key but without the ledger: what reconciliation exists
    to notice, and no request can do."""
    from uuid import UUID

    from domain.system import TREASURY_ID
    from interface.chain import transactions as tx
    from interface.chain.custody import load_custody_keypair
    from interface.chain.embedded import EmbeddedSolana

    alice = UUID("a11ce000-0000-4000-8000-000000000001")
    custody = load_custody_keypair(None, data_dir)
    chain = EmbeddedSolana(data_dir / "chain")
    try:
        chain.transfer_directly(custody, tx.token_account_address(custody.pubkey, TREASURY_ID),
                                tx.token_account_address(custody.pubkey, alice), 1)
    finally:
        chain.close()


def deposit_from_a_stranger(data_dir: Path) -> None:
    """A wallet no account has connected mints 0.5 DEAL (with the mint
    authority, as a faucet) into a token account it owns and sends it to
    Bob's deposit address with its own transfer_checked: what only a user's
    wallet can do."""
    from uuid import UUID

    from interface.chain import transactions as tx
    from interface.chain.custody import load_custody_keypair
    from interface.chain.embedded import EmbeddedSolana
    from tests.support.outside_wallets import OutsideWallet

    bob = UUID("b0b00000-0000-4000-8000-000000000002")
    custody = load_custody_keypair(None, data_dir)
    chain = EmbeddedSolana(data_dir / "chain")
    try:
        stranger = OutsideWallet(chain, tx.mint_address(custody.pubkey))
        stranger.fund(custody, 50_000_000)
        stranger.deposit(str(tx.token_account_address(custody.pubkey, bob)), 50_000_000)
    finally:
        chain.close()


SETUPS: dict[str, Callable[[Path], None]] = {
    "chain-drift": drift_the_chain, "stranger-deposit": deposit_from_a_stranger,
}
"""Steps run on a stopped server's data dir (``<!-- setup: NAME -->``)."""


class DocServer:
    """The documents' ``deals-ledger serve``, which a setup step stops and
    starts again on the same data dir (its address changes)."""

    def __init__(self, workdir: Path) -> None:
        from tests.support.http import ServeProcess

        self.workdir, self.serve = workdir, ServeProcess
        self.server = ServeProcess(workdir, DOCS_ENV)

    def session(self) -> Session:
        token = (self.workdir / "var" / "api-key").read_text().strip()
        return Session(self.server.url, token, setup=self.run_setup)

    def run_setup(self, name: str) -> str:
        self.server.terminate()
        SETUPS[name](self.workdir / "var")
        self.server = self.serve(self.workdir, DOCS_ENV)
        return str(self.server.url)

    def terminate(self) -> None:
        self.server.terminate()


def write_answers(document: Path, session: Session, *, rewrite: bool) -> int:
    """Run every example and write its real answer in: new ones, and with
    ``rewrite`` those whose documented answer no longer matches."""
    text = document.read_text()
    edits = []
    for example in examples(document):
        session.known_ids |= _uuids_in(example.path) | _uuids_in(example.body or "")
        session.prepare(example)
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
    answered = _json_of(response)
    body = json.dumps(answered, indent=2) if answered is not None else response.text
    block = "```http\n" + "\n".join(lines) + "\n\n" + body + "\n```"
    return "\n\n" + block if new else block


def main(argv: list[str]) -> None:
    import tempfile

    rewrite = "--rewrite" in argv
    for name in (arg for arg in argv if not arg.startswith("--")):
        with tempfile.TemporaryDirectory() as workdir:
            server = DocServer(Path(workdir))
            try:
                count = write_answers(Path(name), server.session(), rewrite=rewrite)
                print(f"{name}: {count} answers written")
            finally:
                server.terminate()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
