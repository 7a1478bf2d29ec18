"""The audit against the anchors: the stored log, recomputed, must have the
root each anchor on chain states; and the log and the chain must know the
same anchors. Nothing is fixed; each difference is a finding.

Why both directions: a perfect inside rewrite (events, checkpoints and read
models edited consistently) passes every check the database can make, but
its tree has another root than the anchors the custody authority signed;
and deleting the anchor records from the log does not delete them from the
chain, which is read here by the anchor signer's address, not from the log.

A rewritten, removed or inserted event at position ``p`` changes the root
of every anchor covering ``p``, so the first anchor contradicted is the
first one covering the change, and the change lies after the last anchor
that still holds (``after_position``) and at or before the contradicted
one's position. The chain keeps only roots, so that range is as precise as
the anchors are frequent; the exact first differing position is named from
the anchored leaves the settler keeps outside the database, once their root
is the anchor's (``application.settlement.anchor_witness``), and where the
hash chain's checkpoints were not rewritten too, the replay's hash chain
names it as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from application.eventlog.decoder import EventDecoder
from application.eventlog.merkle_log import LogTree
from application.eventlog.reader import EventLog
from application.settlement.anchor_witness import LeafWitness, first_differing_position
from application.settlement.chain_port import ChainPort
from domain.anchor import AnchorMemo, parse_anchor_memo

SIGNATURE_PAGES_MAX = 10_000


@dataclass(frozen=True)
class AnchorFinding:
    kind: str  # contradicted | truncated | foreign_ledger | unknown_to_log | missing_on_chain
    sequence: int
    signature: str | None
    detail: str
    after_position: int | None = None
    """The first difference lies after this position..."""
    at_or_before_position: int | None = None
    """...and at or before this one."""
    first_differing_position: int | None = None
    """Exactly where, when the anchored leaves' witness vouches for it
    (``application.settlement.anchor_witness``); None otherwise."""


@dataclass
class AnchorAudit:
    anchors_checked: int = 0
    findings: list[AnchorFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings



@dataclass(frozen=True)
class OnChainAnchor:
    signature: str
    memo: AnchorMemo


async def anchors_on_chain(chain: ChainPort) -> list[OnChainAnchor]:
    """Every successful anchor transaction of the anchor signer, oldest first."""
    found: list[OnChainAnchor] = []
    before: str | None = None
    for _ in range(SIGNATURE_PAGES_MAX):
        page = await chain.anchor_signatures(before=before)
        for signature in page:
            landed = await chain.transaction(signature)
            if landed is None or landed.error is not None:
                continue
            for text in landed.memos:
                memo = parse_anchor_memo(text)
                if memo is not None:
                    found.append(OnChainAnchor(signature, memo))
        if len(page) < 1000:
            break
        before = page[-1]
    return sorted(found, key=lambda anchor: (anchor.memo.sequence, anchor.signature))


def audit_anchors(
    tree: LogTree, on_chain: list[OnChainAnchor], in_log: dict[int, str],
    witness: LeafWitness | None = None,
) -> AnchorAudit:
    """``tree``: the stored log recomputed; ``in_log``: the signature of each
    confirmed anchor the log records, by sequence; ``witness``: the anchored
    leaves kept outside the database, if any."""
    audit = AnchorAudit(anchors_checked=len(on_chain))
    ledger_id = tree.tree.leaf(0).hex() if tree.size else ""
    holds_up_to = 0
    first_contradiction: int | None = None
    for anchor in on_chain:
        finding = _check(tree, anchor, ledger_id, holds_up_to)
        if finding is not None and first_contradiction is None:
            finding = _pinpointed(finding, first_differing_position(tree, anchor.memo, witness))
        if finding is None:
            if first_contradiction is None:
                holds_up_to = anchor.memo.position
        else:
            first_contradiction = first_contradiction or anchor.memo.sequence
            audit.findings.append(finding)
        if in_log.get(anchor.memo.sequence) != anchor.signature:
            audit.findings.append(AnchorFinding(
                "unknown_to_log", anchor.memo.sequence, anchor.signature,
                f"anchor {anchor.memo.sequence} is on chain as {anchor.signature}, which the "
                "log does not record as that anchor's confirmed transaction",
            ))
    chain_signatures = {anchor.signature for anchor in on_chain}
    for sequence, signature in sorted(in_log.items()):
        if signature not in chain_signatures:
            audit.findings.append(AnchorFinding(
                "missing_on_chain", sequence, signature,
                f"the log records anchor {sequence} as confirmed by {signature}, which the "
                "chain does not hold as an anchor",
            ))
    return audit


def _check(
    tree: LogTree, anchor: OnChainAnchor, ledger_id: str, holds_up_to: int
) -> AnchorFinding | None:
    memo = anchor.memo
    if memo.ledger_id != ledger_id:
        return AnchorFinding(
            "foreign_ledger", memo.sequence, anchor.signature,
            f"anchor {memo.sequence} names ledger {memo.ledger_id}; the log's first event "
            f"hashes to {ledger_id or 'nothing (the log is empty)'}: it was rewritten or removed",
            after_position=0, at_or_before_position=memo.position,
        )
    if tree.size < memo.tree_size or tree.size_at(memo.position) < memo.tree_size:
        return AnchorFinding(
            "truncated", memo.sequence, anchor.signature,
            f"anchor {memo.sequence} covers {memo.tree_size} events up to position "
            f"{memo.position}; the log has {tree.size_at(memo.position)} there: events were "
            "removed",
            after_position=holds_up_to, at_or_before_position=memo.position,
        )
    root = tree.tree.root(memo.tree_size).hex()
    last = tree.positions[memo.tree_size - 1]
    if root != memo.root or last != memo.position:
        return AnchorFinding(
            "contradicted", memo.sequence, anchor.signature,
            f"the log's first {memo.tree_size} events have root {root} (ending at position "
            f"{last}); anchor {memo.sequence} on chain says {memo.root} (position "
            f"{memo.position}): an event after position {holds_up_to} and at or before "
            f"{memo.position} was altered, removed or inserted",
            after_position=holds_up_to, at_or_before_position=memo.position,
        )
    return None


def anchors_in_log(tree: LogTree, decoder: EventDecoder) -> dict[int, str]:
    """The confirmed anchors the log records: sequence -> signature."""
    sequences: dict[str, int] = {}
    confirmed: dict[int, str] = {}
    for event in tree.anchor_events:
        fields = decoder.fields(event.state)
        if event.topic.endswith("Anchor.Recorded"):
            sequences[event.originator_id] = fields["sequence"]
        elif event.topic.endswith("Anchor.Confirmed") and event.originator_id in sequences:
            confirmed[sequences[event.originator_id]] = fields["signature"]
    return confirmed


async def run_anchor_audit(log: EventLog, decoder: EventDecoder, chain: ChainPort,
                           witness: LeafWitness | None = None) -> AnchorAudit:
    """Recompute the stored log's tree and check it against every anchor on chain."""
    tree = LogTree(log)
    tree.catch_up()
    on_chain = await anchors_on_chain(chain)
    return audit_anchors(tree, on_chain, anchors_in_log(tree, decoder), witness)


def _pinpointed(finding: AnchorFinding, position: int | None) -> AnchorFinding:
    """The first contradicted anchor's finding, with the exact position when
    the witness vouches for it."""
    if position is None:
        return finding
    return replace(finding, first_differing_position=position,
                   detail=f"{finding.detail}; the first differing position is {position} "
                          "(the anchored leaves kept by the settler, checked against this "
                          "anchor's root, say so)")
