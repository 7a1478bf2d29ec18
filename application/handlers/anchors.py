"""Anchor steps: the anchoring process records each here, so the log says
what may land before it is sent and, afterwards, what did. Each step is a
compare-and-set: an anchor follows a confirmed predecessor whose root it
names, a re-signing or a confirmation names the transaction in force, and a
repeat of a recorded step changes nothing (so a retried command is safe)."""

from __future__ import annotations

from datetime import datetime

from application import commands as c
from application.handlers.session import AggregateSession
from application.outcomes import AnchorStep
from domain.anchor import NO_PREVIOUS_ROOT, Anchor, AnchorMemo, anchor_id
from domain.errors import InvalidRequest, SettlementConflict

RECORDED = "recorded"
CONFIRMED = "confirmed"


def record_anchor(
    command: c.RecordAnchor, session: AggregateSession, now: datetime
) -> AnchorStep:
    signature = c.check_signature(command.signature)
    existing = session.get_typed(anchor_id(command.sequence), Anchor)
    if existing is not None:
        if existing.root != command.root or existing.position != command.position:
            raise SettlementConflict(f"anchor {command.sequence} was recorded for another root")
        return _step(session, existing, replayed=True)
    _check_follows(command, session)
    memo = AnchorMemo(
        command.ledger_id, command.sequence, command.position, command.tree_size,
        command.root, command.previous_root,
    )
    anchor = Anchor.record(
        memo, signature=signature, last_valid_block_height=command.last_valid_block_height,
        transaction=command.transaction, now=now,
    )
    session.add(anchor, primary=True)
    return _step(session, anchor)


def resign_anchor(
    command: c.ResignAnchor, session: AggregateSession, now: datetime
) -> AnchorStep:
    anchor = _anchor(session, command.sequence)
    signature = c.check_signature(command.signature)
    if anchor.signature == signature and not anchor.confirmed:
        return _step(session, anchor, replayed=True)
    anchor.resign(
        command.supersedes, signature=signature,
        last_valid_block_height=command.last_valid_block_height,
        transaction=command.transaction, now=now,
    )
    return _step(session, anchor)


def confirm_anchor(
    command: c.ConfirmAnchor, session: AggregateSession, now: datetime
) -> AnchorStep:
    anchor = _anchor(session, command.sequence)
    if anchor.confirmed and anchor.signature == command.signature:
        return _step(session, anchor, replayed=True)
    anchor.confirm(command.signature, command.slot, now)
    return _step(session, anchor)


def _check_follows(command: c.RecordAnchor, session: AggregateSession) -> None:
    if command.sequence < 1 or command.tree_size < 1 or command.position < 1:
        raise InvalidRequest("an anchor has a sequence, position and tree size of at least 1")
    if command.sequence == 1:
        if command.previous_root != NO_PREVIOUS_ROOT:
            raise SettlementConflict("the first anchor names no previous root")
        return
    previous = session.get_typed(anchor_id(command.sequence - 1), Anchor)
    if previous is None or not previous.confirmed:
        raise SettlementConflict(
            f"anchor {command.sequence} waits for anchor {command.sequence - 1} to be confirmed"
        )
    if previous.root != command.previous_root:
        raise SettlementConflict(f"anchor {command.sequence} names another previous root")
    if command.tree_size <= previous.tree_size or command.position <= previous.position:
        raise SettlementConflict(f"anchor {command.sequence} does not extend the previous one")


def _anchor(session: AggregateSession, sequence: int) -> Anchor:
    anchor = session.get_typed(anchor_id(sequence), Anchor)
    if anchor is None:
        raise SettlementConflict(f"anchor {sequence} was never recorded")
    return anchor


def _step(session: AggregateSession, anchor: Anchor, *, replayed: bool = False) -> AnchorStep:
    session.set_primary(anchor.id)
    status = CONFIRMED if anchor.confirmed else RECORDED
    return AnchorStep(anchor.sequence, anchor.signature, status, replayed=replayed)
