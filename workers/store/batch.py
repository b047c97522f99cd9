"""Store one batch of callbacks in one transaction. Idempotent: a batch stored twice counts once.

The steps, all in the caller's transaction:
1. record receipts in `callback_receipts`, one span of stream ids per contiguous read; entries
   inside an earlier span were stored by an earlier delivery (a worker died between commit and
   XACK) and are dropped (workers/store/receipts.py), except for the changes they created,
   which that delivery never published (workers/store/unpublished.py);
2. upsert `messages` with the rank guard inside the statement, so no interleaving of workers
   can move a status backwards; a final status other than the first one kept flags the message
   for reconciliation (`needs_reconcile`);
3. upsert `message_events`, one row per (message, status), counting duplicates;
4. decide what to do about the failures among the new events (the actions outbox,
   workers/actions/outbox.py), when the caller asks: decision and failure commit together;
5. keep malformed entries in `dead_letters`.

It returns, besides the counts, the audit rows stored for the first time (`changes`): the
status changes the caller publishes to the change feed once the transaction has committed.

On PostgreSQL steps 1-3 load their rows with COPY (workers/store/postgres.py, the drain's hot
path); elsewhere the portable SQLAlchemy statements of workers/store/portable.py run them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from shared.callback import Callback
from shared.models import DeadLetter
from workers.store import portable
from workers.store import postgres as pg
from workers.store.collapse import collapse
from workers.store.receipts import RecordSpans, fresh
from workers.store.rows import EventRow, MessageRow
from workers.store.unpublished import unpublished_changes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadEntry:
    stream_id: str
    reason: str
    entry: dict[str, Any]


@dataclass(slots=True)
class BatchResult:
    stored: int = 0  # callbacks counted for the first time
    redelivered: int = 0  # callbacks already stored by an earlier delivery
    dead: int = 0
    conflicts: list[str] = field(default_factory=list)
    action_ids: list[int] = field(default_factory=list)  # outbox rows to dispatch after commit
    # New (message, status) pairs: the status changes to publish after commit (workers/changes.py)
    changes: list[EventRow] = field(default_factory=list)


# Given the batch's new audit rows, writes the outbox rows they call for; returns their ids.
PlanActions = Callable[[Session, list[EventRow]], list[int]]


class _Statements(NamedTuple):
    """Steps 1-3 for one kind of database; store_batch picks the set once per batch."""

    record_spans: RecordSpans
    upsert_messages: Callable[[Session, list[MessageRow]], list[str]]  # -> newly flagged sids
    upsert_events: Callable[[Session, list[EventRow]], set[tuple[str, str]]]  # -> already stored


_PORTABLE = _Statements(portable.record_spans, portable.upsert_messages, portable.upsert_events)
_POSTGRES = _Statements(pg.record_spans, pg.upsert_messages, pg.upsert_events)


def _store_dead(session: Session, dead: Sequence[DeadEntry]) -> None:
    if not dead:
        return
    stmt = portable.insert_for(session, DeadLetter.__table__).on_conflict_do_nothing(
        index_elements=["stream_id"]
    )
    session.execute(
        stmt, [{"stream_id": d.stream_id, "reason": d.reason, "entry": d.entry} for d in dead]
    )


def store_batch(
    session: Session,
    callbacks: Sequence[Callback],
    dead: Sequence[DeadEntry] = (),
    spans: Sequence[tuple[str, str]] | None = None,
    plan_actions: PlanActions | None = None,
) -> BatchResult:
    """Write a batch in the session's transaction (the caller commits). Idempotent.

    `spans` are the (first, last) stream ids of each contiguous read the batch came from, so one
    receipt covers a whole XREADGROUP read; they must cover every callback. Without them each
    callback is its own span."""
    result = BatchResult(dead=len(dead))
    sql = _POSTGRES if session.get_bind().dialect.name == "postgresql" else _PORTABLE
    new = fresh(session, sql.record_spans, callbacks, spans)
    result.stored = len(new)
    result.redelivered = len(callbacks) - len(new)
    if result.redelivered:
        kept = {id(cb) for cb in new}
        redelivered = [cb for cb in callbacks if id(cb) not in kept]
        result.changes = unpublished_changes(session, redelivered)
    if new:
        event_rows, message_rows = collapse(new)
        result.conflicts = sql.upsert_messages(session, message_rows)
        already = sql.upsert_events(session, event_rows)
        result.changes += (
            [r for r in event_rows if (r.first.message_sid, r.first.status) not in already]
            if already
            else event_rows
        )
        if plan_actions is not None:
            result.action_ids = plan_actions(session, event_rows)
        for sid in result.conflicts:
            log.warning(
                "conflicting final statuses for %s; keeping the first, flagged needs_reconcile",
                sid,
            )
    _store_dead(session, dead)
    return result
