"""Store one batch of callbacks in one transaction. Idempotent: a batch stored twice counts once.

The steps, all in the caller's transaction:
1. record receipts in `callback_receipts`, one span of stream ids per contiguous read; entries
   inside an earlier span were stored by an earlier delivery (a worker died between commit and
   XACK) and are dropped;
2. upsert `messages` with the rank guard inside the statement, so no interleaving of workers
   can move a status backwards; a final status other than the first one kept flags the message
   for reconciliation (`needs_reconcile`);
3. upsert `message_events`, one row per (message, status), counting duplicates;
4. keep malformed entries in `dead_letters`.

On PostgreSQL steps 2-3 load their rows with COPY (workers/persist_postgres.py, the drain's
hot path); the SQLAlchemy statements below are the portable form, used for SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.callback import Callback
from shared.models import CallbackReceipt, DeadLetter, Message, MessageEvent, UtcTime
from workers import persist_postgres as pg
from workers.dedupe import EventRow, MessageRow, collapse

log = logging.getLogger(__name__)


StreamKey = tuple[int, int]  # a stream id "<ms>-<seq>" as numbers, so ids compare in order
Span = tuple[StreamKey, StreamKey]  # first and last stream id of a contiguous read, inclusive


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


def _insert(session: Session, table: Any) -> Any:
    # Always a Table, never a mapped class: the ORM bulk path would map dict keys to attribute
    # names and silently drop the `from` column (attribute `from_`).
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def _greatest(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    # SQLite spells GREATEST/LEAST as the two-argument max()/min() scalar functions.
    if session.get_bind().dialect.name == "sqlite":
        return func.max(a, b)
    return func.greatest(a, b)


def _least(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return func.min(a, b)
    return func.least(a, b)


def parse_stream_id(stream_id: str) -> StreamKey:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _record_spans(session: Session, spans: list[Span]) -> set[StreamKey]:
    """Record receipts; return the starts of the spans that overlap no earlier one.

    SQLite has a single writer, so checking first and then inserting cannot race; PostgreSQL
    uses the exclusion constraint instead (persist_postgres.record_spans)."""
    r = CallbackReceipt.__table__.c
    recorded: set[StreamKey] = set()
    for first, last in spans:
        overlap = select(literal(1)).where(
            tuple_(r.first_ms, r.first_seq) <= tuple_(*last),
            tuple_(r.last_ms, r.last_seq) >= tuple_(*first),
        )
        if session.execute(overlap.limit(1)).first() is None:
            session.execute(
                CallbackReceipt.__table__.insert().values(
                    first_ms=first[0], first_seq=first[1], last_ms=last[0], last_seq=last[1]
                )
            )
            recorded.add(first)
    return recorded


def _flagged(session: Session, sids: list[str]) -> set[str]:
    m = Message.__table__.c
    return set(session.scalars(select(m.sid).where(m.sid.in_(sids), m.needs_reconcile)))


def _upsert_messages(session: Session, message_rows: list[MessageRow]) -> list[str]:
    rows = [r.values() for r in message_rows]
    now = literal(datetime.now(UTC), UtcTime())
    for row in rows:
        row["reconcile_flagged_at"] = now.value if row["needs_reconcile"] else None
    sids = [r["sid"] for r in rows]
    already = _flagged(session, sids)

    stmt = _insert(session, Message.__table__)
    ex = stmt.excluded
    m = Message.__table__.c
    moves = ex.status_rank > m.status_rank
    other_final = and_(
        m.final_status.is_not(None),
        ex.final_status.is_not(None),
        m.final_status != ex.final_status,
    )

    def when_moves(new: Any, old: Any) -> Any:
        return case((moves, new), else_=old)

    stmt = stmt.on_conflict_do_update(
        index_elements=["sid"],
        set_={
            "status": when_moves(ex.status, m.status),
            "status_rank": _greatest(session, m.status_rank, ex.status_rank),
            "error_code": when_moves(ex.error_code, m.error_code),
            "error_message": when_moves(ex.error_message, m.error_message),
            "status_updated_at": when_moves(ex.status_updated_at, m.status_updated_at),
            "carrier_done_at": when_moves(
                func.coalesce(ex.carrier_done_at, m.carrier_done_at),
                func.coalesce(m.carrier_done_at, ex.carrier_done_at),
            ),
            "created_at": _least(session, m.created_at, ex.created_at),
            "callback_received_at": _greatest(
                session, m.callback_received_at, ex.callback_received_at
            ),
            "account_sid": func.coalesce(m.account_sid, ex.account_sid),
            "to": func.coalesce(m.to, ex.to),
            "from": func.coalesce(m["from"], ex["from"]),
            "messaging_service_sid": func.coalesce(
                m.messaging_service_sid, ex.messaging_service_sid
            ),
            "final_status": func.coalesce(m.final_status, ex.final_status),
            "needs_reconcile": or_(m.needs_reconcile, ex.needs_reconcile, other_final),
            "reconcile_flagged_at": case(
                (m.needs_reconcile, m.reconcile_flagged_at),
                (or_(ex.needs_reconcile, other_final), now),
                else_=None,
            ),
        },
    )
    # RETURNING makes SQLAlchemy send the rows as one multi-row VALUES statement per page;
    # without it an upsert falls back to one round trip per row (SQLAlchemy #13130).
    session.execute(stmt.returning(m.sid), rows).close()
    return sorted(_flagged(session, sids) - already)


def _upsert_events(session: Session, event_rows: list[EventRow]) -> None:
    rows = [r.values() for r in event_rows]
    stmt = _insert(session, MessageEvent.__table__)
    ex = stmt.excluded
    e = MessageEvent.__table__.c
    stmt = stmt.on_conflict_do_update(
        index_elements=["message_sid", "status"],
        set_={
            # The incoming row stands for 1 + its in-batch duplicates.
            "duplicate_count": e.duplicate_count + ex.duplicate_count + 1,
            "received_at": _least(session, e.received_at, ex.received_at),
        },
    )
    session.execute(stmt.returning(e.message_sid), rows).close()


class _Statements(NamedTuple):
    """Steps 1-3 for one kind of database; store_batch picks the set once per batch."""

    record_spans: Callable[[Session, list[Span]], set[StreamKey]]
    upsert_messages: Callable[[Session, list[MessageRow]], list[str]]  # -> newly flagged sids
    upsert_events: Callable[[Session, list[EventRow]], None]


_PORTABLE = _Statements(_record_spans, _upsert_messages, _upsert_events)
_POSTGRES = _Statements(pg.record_spans, pg.upsert_messages, pg.upsert_events)


def _store_dead(session: Session, dead: Sequence[DeadEntry]) -> None:
    if not dead:
        return
    stmt = _insert(session, DeadLetter.__table__).on_conflict_do_nothing(
        index_elements=["stream_id"]
    )
    session.execute(
        stmt, [{"stream_id": d.stream_id, "reason": d.reason, "entry": d.entry} for d in dead]
    )


def _fresh(
    session: Session,
    sql: _Statements,
    callbacks: Sequence[Callback],
    spans: Sequence[tuple[str, str]] | None,
) -> list[Callback]:
    """Record the batch's receipts; return the callbacks no earlier delivery stored."""
    if not callbacks:
        return []
    if spans is None:
        spans = [(cb.stream_id, cb.stream_id) for cb in callbacks]
    parsed = [(parse_stream_id(a), parse_stream_id(b)) for a, b in spans]
    recorded = sql.record_spans(session, parsed)
    if len(recorded) == len(parsed):
        return list(callbacks)
    # Some span overlaps an earlier receipt (a takeover, or the group was rewound): sort its
    # entries out one by one.
    taken = [span for span in parsed if span[0] not in recorded]
    fresh: list[Callback] = []
    doubtful: dict[StreamKey, Callback] = {}
    for cb in callbacks:
        key = parse_stream_id(cb.stream_id)
        if any(first <= key <= last for first, last in taken):
            doubtful[key] = cb
        else:
            fresh.append(cb)
    if doubtful:
        new = sql.record_spans(session, [(key, key) for key in doubtful])
        fresh += [cb for key, cb in doubtful.items() if key in new]
    return fresh


def store_batch(
    session: Session,
    callbacks: Sequence[Callback],
    dead: Sequence[DeadEntry] = (),
    spans: Sequence[tuple[str, str]] | None = None,
) -> BatchResult:
    """Write a batch in the session's transaction (the caller commits). Idempotent.

    `spans` are the (first, last) stream ids of each contiguous read the batch came from, so one
    receipt covers a whole XREADGROUP read; they must cover every callback. Without them each
    callback is its own span."""
    result = BatchResult(dead=len(dead))
    sql = _POSTGRES if session.get_bind().dialect.name == "postgresql" else _PORTABLE
    fresh = _fresh(session, sql, callbacks, spans)
    result.stored = len(fresh)
    result.redelivered = len(callbacks) - len(fresh)
    if fresh:
        event_rows, message_rows = collapse(fresh)
        result.conflicts = sql.upsert_messages(session, message_rows)
        sql.upsert_events(session, event_rows)
        for sid in result.conflicts:
            log.warning(
                "conflicting final statuses for %s; keeping the first, flagged needs_reconcile",
                sid,
            )
    _store_dead(session, dead)
    return result


def purge_receipts(session: Session, older_than_hours: int) -> int:
    """Forget stream ids older than the retention; returns how many were deleted.

    An entry can only be redelivered while it sits unacknowledged in Redis, so receipts need to
    outlive that window only (hours, unless every worker is down for longer).
    """
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    stmt = CallbackReceipt.__table__.delete().where(CallbackReceipt.processed_at < cutoff)
    return session.execute(stmt).rowcount or 0
