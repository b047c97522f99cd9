"""The batch statements for PostgreSQL: rows travel by COPY into temporary tables, then one
`INSERT ... SELECT ... ON CONFLICT` per table applies them.

COPY's text format is the cheapest way into PostgreSQL on both sides: the worker writes one line
per row instead of having psycopg2 adapt every value, and the server reads it without parsing SQL
literals. On the drain benchmark this cost a third of the array-parameter statements it replaced.
The staging tables are session-local, created once per connection and emptied at each commit.
Receive times travel as the epoch seconds the ingress stamped and become timestamps server-side:
formatting datetimes in Python cost more than the rest of a row.
The staging tables and the column lists come from workers/store/rows.py; the conflict rules are
the same as the portable statements in workers/store/portable.py (used for SQLite), and the
store tests run both.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.orm import Session

from workers.store.receipts import Span, StreamKey
from workers.store.rows import (
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    MESSAGE_NAMES,
    Column,
    EventRow,
    MessageRow,
)

_STAGE_MESSAGES = "statuspipe_stage_messages"
_STAGE_EVENTS = "statuspipe_stage_events"


def _quoted(name: str) -> str:
    # Quoted because "to" and "from" are reserved words; a lower-case name means the same quoted.
    return f'"{name}"'


def _stage_table(table: str, columns: Sequence[Column]) -> str:
    # IF NOT EXISTS keeps this correct behind a transaction-pooling proxy too, where the server
    # session (and its temporary tables) can change between transactions.
    spec = ", ".join(f"{_quoted(c.staged)} {c.stage_type}" for c in columns)
    return f"""
SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE IF NOT EXISTS {table} ({spec}) ON COMMIT DELETE ROWS
"""


def _insert_columns(columns: Sequence[Column]) -> str:
    return ", ".join(_quoted(c.name) for c in columns)


def _select_columns(columns: Sequence[Column]) -> str:
    """The staged values in table order, epoch seconds turned into timestamps."""
    return ", ".join(
        f"to_timestamp(s.{_quoted(c.staged)})" if c.epoch else f"s.{_quoted(c.name)}"
        for c in columns
    )


_CREATE_STAGE_MESSAGES = _stage_table(_STAGE_MESSAGES, MESSAGE_COLUMNS)
_CREATE_STAGE_EVENTS = _stage_table(_STAGE_EVENTS, EVENT_COLUMNS)

# No conflict target: the exclusion constraint on overlapping spans is an arbiter too, and it
# makes this statement wait for a concurrent transaction holding an overlapping span.
_RECEIPTS = text("""
INSERT INTO callback_receipts (first_ms, first_seq, last_ms, last_seq)
SELECT * FROM unnest(CAST(:first_ms AS bigint[]), CAST(:first_seq AS bigint[]),
                     CAST(:last_ms AS bigint[]), CAST(:last_seq AS bigint[]))
ON CONFLICT DO NOTHING RETURNING first_ms, first_seq
""")

# The rank guard lives in the statement: a row only moves to a higher-ranked status, so two
# workers racing on one message can never regress it. ORDER BY sid: every worker locks rows in
# the same order, so two batches sharing messages cannot deadlock. A final status that differs
# from the first one kept flags the row; the flag time, now() of this transaction, tells which
# rows this batch flagged.
_MESSAGES = f"""
WITH upserted AS (
INSERT INTO messages AS m ({_insert_columns(MESSAGE_COLUMNS)}, reconcile_flagged_at)
SELECT {_select_columns(MESSAGE_COLUMNS)}, CASE WHEN s.needs_reconcile THEN now() END
FROM {_STAGE_MESSAGES} s ORDER BY s.sid
ON CONFLICT (sid) DO UPDATE SET
    status = CASE WHEN excluded.status_rank > m.status_rank THEN excluded.status ELSE m.status END,
    status_rank = GREATEST(m.status_rank, excluded.status_rank),
    error_code = CASE WHEN excluded.status_rank > m.status_rank
        THEN excluded.error_code ELSE m.error_code END,
    error_message = CASE WHEN excluded.status_rank > m.status_rank
        THEN excluded.error_message ELSE m.error_message END,
    status_updated_at = CASE WHEN excluded.status_rank > m.status_rank
        THEN excluded.status_updated_at ELSE m.status_updated_at END,
    carrier_done_at = CASE WHEN excluded.status_rank > m.status_rank
        THEN coalesce(excluded.carrier_done_at, m.carrier_done_at)
        ELSE coalesce(m.carrier_done_at, excluded.carrier_done_at) END,
    created_at = LEAST(m.created_at, excluded.created_at),
    callback_received_at = GREATEST(m.callback_received_at, excluded.callback_received_at),
    account_sid = coalesce(m.account_sid, excluded.account_sid),
    "to" = coalesce(m."to", excluded."to"),
    "from" = coalesce(m."from", excluded."from"),
    messaging_service_sid = coalesce(m.messaging_service_sid, excluded.messaging_service_sid),
    final_status = coalesce(m.final_status, excluded.final_status),
    needs_reconcile = m.needs_reconcile OR excluded.needs_reconcile
        OR coalesce(m.final_status <> excluded.final_status, false),
    callback_count = m.callback_count + excluded.callback_count,
    statuses_seen = m.statuses_seen | excluded.statuses_seen,
    reconcile_flagged_at = CASE WHEN m.needs_reconcile THEN m.reconcile_flagged_at
        WHEN excluded.needs_reconcile OR m.final_status <> excluded.final_status THEN now() END
RETURNING m.sid, m.reconcile_flagged_at
)
SELECT sid FROM upserted WHERE reconcile_flagged_at = now() ORDER BY sid
"""  # noqa: S608 - built at import from rows.py, never from input

# Returns the pairs that were already stored (usually none): the others are new audit events,
# the batch's status changes for the change feed. A row the upsert updated carries this
# transaction's id in xmax (the row lock ON CONFLICT DO UPDATE takes); an inserted one has 0.
# Returning only the exceptions keeps the rows fetched per batch near zero; comparing counts
# with the staged ones instead (a join) cost PostgreSQL 3-5 µs per callback.
_EVENTS = f"""
WITH upserted AS (
INSERT INTO message_events AS e ({_insert_columns(EVENT_COLUMNS)})
SELECT {_select_columns(EVENT_COLUMNS)}
FROM {_STAGE_EVENTS} s ORDER BY s.message_sid, s.status
ON CONFLICT (message_sid, status) DO UPDATE SET
    duplicate_count = e.duplicate_count + excluded.duplicate_count + 1,
    received_at = LEAST(e.received_at, excluded.received_at)
RETURNING e.message_sid, e.status, e.xmax::text <> '0' AS updated
)
SELECT message_sid, status FROM upserted WHERE updated
"""  # noqa: S608 - built at import from rows.py, never from input

# COPY text format: these four characters must be escaped; NULL is \N.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


def copy_line(values: Sequence[Any]) -> str:
    """One row in COPY's text format. Values are joined first and escaped only when the line
    shows a special character: Twilio's fields almost never hold one, and escaping every field
    cost more than the rest of the line."""
    line = "\t".join(["\\N" if v is None else str(v) for v in values])
    if (
        line.count("\\") != values.count(None)  # each NULL marker carries one backslash
        or "\n" in line
        or "\r" in line
        or line.count("\t") != len(values) - 1
    ):
        line = "\t".join([_field(v) for v in values])
    return line + "\n"


def _copy(session: Session, table: str, lines: Iterable[str]) -> None:
    data = "".join(lines)
    statement = f"COPY {table} FROM STDIN"
    dialect = session.get_bind().dialect
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(statement, io.StringIO(data), size=len(data) + 1)
    except dialect.loaded_dbapi.Error as exc:
        # The raw cursor bypasses SQLAlchemy: wrap the error as SQLAlchemy would (DataError,
        # OperationalError, ...), so the drain tells a bad row from a lost database, and drop
        # a dead connection from the pool as SQLAlchemy would.
        lost = dialect.is_disconnect(exc, raw, cursor)
        if lost:
            connection.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            statement,
            None,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


def record_spans(session: Session, spans: list[Span]) -> set[StreamKey]:
    """Record receipts; return the starts of the spans that overlap no earlier one."""
    params = {
        "first_ms": [s[0][0] for s in spans],
        "first_seq": [s[0][1] for s in spans],
        "last_ms": [s[1][0] for s in spans],
        "last_seq": [s[1][1] for s in spans],
    }
    return {(ms, seq) for ms, seq in session.execute(_RECEIPTS, params)}


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    return value.isoformat()


_CARRIER_DONE = MESSAGE_NAMES.index("carrier_done_at")


def _message_line(row: MessageRow) -> str:
    values = row.columns()
    done = values[_CARRIER_DONE]
    if done is not None:
        # Minute resolution: a busy worker formats the same few values over and over.
        values[_CARRIER_DONE] = _iso(done)
    return copy_line(values)


def _event_line(row: EventRow) -> str:
    return copy_line(row.columns())


def upsert_messages(session: Session, rows: list[MessageRow]) -> list[str]:
    """Returns the sids this batch flagged for reconciliation."""
    session.execute(text(_CREATE_STAGE_MESSAGES))
    _copy(session, _STAGE_MESSAGES, map(_message_line, rows))
    return list(session.execute(text(_MESSAGES)).scalars())


def upsert_events(session: Session, rows: list[EventRow]) -> set[tuple[str, str]]:
    """Returns the (sid, status) pairs that an earlier batch had stored already."""
    session.execute(text(_CREATE_STAGE_EVENTS))
    _copy(session, _STAGE_EVENTS, map(_event_line, rows))
    return {(sid, status) for sid, status in session.execute(text(_EVENTS))}
