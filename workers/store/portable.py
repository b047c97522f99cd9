"""The batch statements in portable SQLAlchemy Core: what `make run` uses on SQLite.

PostgreSQL takes the COPY path of workers/store/postgres.py instead (the drain's hot path) for
receipts, messages and events; the rules are the same, and the store tests run both. Dead
letters use `insert_for` on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.models import CallbackReceipt, Message, MessageEvent, UtcTime
from workers.store.receipts import Span, StreamKey
from workers.store.rows import EventRow, MessageRow


def insert_for(session: Session, table: Any) -> Any:
    """An INSERT with ON CONFLICT for the session's database."""
    # Always a Table, never a mapped class: the ORM bulk path would map dict keys to attribute
    # names and silently drop the `from` column (attribute `from_`).
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    # SQLite spells GREATEST/LEAST as the two-argument max()/min() scalar functions.
    if dialect == "sqlite":
        return func.max(a, b)
    return func.greatest(a, b)


def _least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.min(a, b)
    return func.least(a, b)


def record_spans(session: Session, spans: list[Span]) -> set[StreamKey]:
    """Record receipts; return the starts of the spans that overlap no earlier one.

    SQLite has a single writer, so checking first and then inserting cannot race; PostgreSQL
    uses the exclusion constraint instead (postgres.record_spans)."""
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


def _message_params(message_rows: list[MessageRow], now: datetime) -> list[dict[str, Any]]:
    rows = [r.values() for r in message_rows]
    for row in rows:
        row["reconcile_flagged_at"] = now if row["needs_reconcile"] else None
    return rows


def _message_updates(dialect: str, stmt: Any, now: Any) -> dict[str, Any]:
    """The rank guard and the reconcile flag, as the upsert's SET clause."""
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

    return {
        "status": when_moves(ex.status, m.status),
        "status_rank": _greatest(dialect, m.status_rank, ex.status_rank),
        "error_code": when_moves(ex.error_code, m.error_code),
        "error_message": when_moves(ex.error_message, m.error_message),
        "status_updated_at": when_moves(ex.status_updated_at, m.status_updated_at),
        "carrier_done_at": when_moves(
            func.coalesce(ex.carrier_done_at, m.carrier_done_at),
            func.coalesce(m.carrier_done_at, ex.carrier_done_at),
        ),
        "created_at": _least(dialect, m.created_at, ex.created_at),
        "callback_received_at": _greatest(dialect, m.callback_received_at, ex.callback_received_at),
        "account_sid": func.coalesce(m.account_sid, ex.account_sid),
        "to": func.coalesce(m.to, ex.to),
        "from": func.coalesce(m["from"], ex["from"]),
        "messaging_service_sid": func.coalesce(m.messaging_service_sid, ex.messaging_service_sid),
        "final_status": func.coalesce(m.final_status, ex.final_status),
        "needs_reconcile": or_(m.needs_reconcile, ex.needs_reconcile, other_final),
        "callback_count": m.callback_count + ex.callback_count,
        "statuses_seen": m.statuses_seen.op("|")(ex.statuses_seen),
        "reconcile_flagged_at": case(
            (m.needs_reconcile, m.reconcile_flagged_at),
            (or_(ex.needs_reconcile, other_final), now),
            else_=None,
        ),
    }


def upsert_messages(session: Session, message_rows: list[MessageRow]) -> list[str]:
    """Returns the sids this batch flagged for reconciliation."""
    now = literal(datetime.now(UTC), UtcTime())
    rows = _message_params(message_rows, now.value)
    sids = [r["sid"] for r in rows]
    already = _flagged(session, sids)
    stmt = insert_for(session, Message.__table__)
    dialect = session.get_bind().dialect.name
    stmt = stmt.on_conflict_do_update(
        index_elements=["sid"], set_=_message_updates(dialect, stmt, now)
    )
    # RETURNING makes SQLAlchemy send the rows as one multi-row VALUES statement per page;
    # without it an upsert falls back to one round trip per row (SQLAlchemy #13130).
    session.execute(stmt.returning(Message.__table__.c.sid), rows).close()
    return sorted(_flagged(session, sids) - already)


def _event_updates(dialect: str, stmt: Any) -> dict[str, Any]:
    ex = stmt.excluded
    e = MessageEvent.__table__.c
    return {
        # The incoming row stands for 1 + its in-batch duplicates.
        "duplicate_count": e.duplicate_count + ex.duplicate_count + 1,
        "received_at": _least(dialect, e.received_at, ex.received_at),
    }


def _stored_pairs(session: Session, event_rows: list[EventRow]) -> set[tuple[str, str]]:
    e = MessageEvent.__table__.c
    sids = sorted({r.first.message_sid for r in event_rows})
    found = session.execute(select(e.message_sid, e.status).where(e.message_sid.in_(sids)))
    return {(sid, status) for sid, status in found}


def upsert_events(session: Session, event_rows: list[EventRow]) -> set[tuple[str, str]]:
    """Returns the (sid, status) pairs that an earlier batch had stored already."""
    batch = {(r.first.message_sid, r.first.status) for r in event_rows}
    # SQLite runs one writer at a time, and a transaction whose read another one's write overtook
    # cannot commit (SQLITE_BUSY): the answer cannot go stale unnoticed.
    already = _stored_pairs(session, event_rows) & batch
    rows = [r.values() for r in event_rows]
    stmt = insert_for(session, MessageEvent.__table__)
    dialect = session.get_bind().dialect.name
    stmt = stmt.on_conflict_do_update(
        index_elements=["message_sid", "status"], set_=_event_updates(dialect, stmt)
    )
    session.execute(stmt.returning(MessageEvent.__table__.c.message_sid), rows).close()
    return already
