"""Receipts: the spans of stream ids already stored, which make a redelivered entry harmless.

Each contiguous read of the stream is recorded as one span (`callback_receipts`) in the same
transaction as its rows. An entry inside an earlier span was stored by an earlier delivery (a
worker died between commit and XACK, or the group was rewound) and is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from shared.callback import Callback
from shared.models import CallbackReceipt

StreamKey = tuple[int, int]  # a stream id "<ms>-<seq>" as numbers, so ids compare in order
Span = tuple[StreamKey, StreamKey]  # first and last stream id of a contiguous read, inclusive
# Records spans; returns the starts of those that overlap no earlier one (one per backend).
RecordSpans = Callable[[Session, list[Span]], set[StreamKey]]


def parse_stream_id(stream_id: str) -> StreamKey:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def fresh(
    session: Session,
    record_spans: RecordSpans,
    callbacks: Sequence[Callback],
    spans: Sequence[tuple[str, str]] | None,
) -> list[Callback]:
    """Record the batch's receipts; return the callbacks no earlier delivery stored."""
    if not callbacks:
        return []
    if spans is None:
        spans = [(cb.stream_id, cb.stream_id) for cb in callbacks]
    parsed = [(parse_stream_id(a), parse_stream_id(b)) for a, b in spans]
    recorded = record_spans(session, parsed)
    if len(recorded) == len(parsed):
        return list(callbacks)
    # Some span overlaps an earlier receipt (a takeover, or the group was rewound): sort its
    # entries out one by one.
    taken = [span for span in parsed if span[0] not in recorded]
    new_callbacks: list[Callback] = []
    doubtful: dict[StreamKey, Callback] = {}
    for cb in callbacks:
        key = parse_stream_id(cb.stream_id)
        if any(first <= key <= last for first, last in taken):
            doubtful[key] = cb
        else:
            new_callbacks.append(cb)
    if doubtful:
        new = record_spans(session, [(key, key) for key in doubtful])
        new_callbacks += [cb for key, cb in doubtful.items() if key in new]
    return new_callbacks


def purge_receipts(session: Session, older_than_hours: int) -> int:
    """Forget stream ids older than the retention; returns how many were deleted.

    An entry can only be redelivered while it sits unacknowledged in Redis, so receipts need to
    outlive that window only (hours, unless every worker is down for longer).
    """
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    stmt = CallbackReceipt.__table__.delete().where(CallbackReceipt.processed_at < cutoff)
    return session.execute(stmt).rowcount or 0
