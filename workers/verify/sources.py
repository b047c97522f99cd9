"""What `verify` reads: the ledger and the queued entries from Redis, then the audit trail, the
dead letters and the receipts from the database, each filed under its minute.

The order matters. The ledger is read first, so everything it counts was appended before the
stream is read; the stream before the database, so an entry stored in between is in the database
and still in the stream, never in neither; and an entry that is in both is recognised by its
receipt (or its dead letter) and counted once, as stored.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import ledger, stream
from shared.callback import MESSAGE_SID_RE, parse_form
from shared.ledger import Tally
from shared.models import CallbackReceipt, DeadLetter, MessageEvent
from shared.timefmt import epoch_micros

StreamKey = tuple[int, int]


@dataclass(slots=True)
class Side:
    """One kind of thing accounted for, per minute: the sums, and how many callbacks."""

    tallies: dict[int, Tally] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    unkeyed: int = 0  # entries with no valid sid and status: never in the ledger

    def add(self, bucket: int, sid: str, status: str, copies: int = 1) -> None:
        self.tallies.setdefault(bucket, Tally()).add(sid, status, copies)
        self.counts[bucket] = self.counts.get(bucket, 0) + copies

    def total(self, buckets: set[int]) -> int:
        return sum(n for b, n in self.counts.items() if b in buckets)


@dataclass(slots=True)
class QueuedEntry:
    stream_id: str
    key: StreamKey
    bucket: int
    sid: str
    status: str


def read_ledger(client: redis.Redis, stream_key: str, buckets: list[int]) -> dict[int, Tally]:
    out: dict[int, Tally] = {}
    for start in range(0, len(buckets), 100):
        chunk = buckets[start : start + 100]
        values = client.mget([k for b in chunk for k in ledger.cell_keys(stream_key, b)])
        for i, bucket in enumerate(chunk):
            tally = Tally.from_cells(values[i * ledger.CELLS : (i + 1) * ledger.CELLS])
            if tally.cells:
                out[bucket] = tally
    return out


def redis_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _stream_key(stream_id: str) -> StreamKey:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def pair_of(form: str) -> tuple[str, str] | None:
    """(MessageSid, MessageStatus) of a callback's form, when both are what the ingress accepts
    (and so what the ledger counted)."""
    try:
        fields = parse_form(form)
    except ValueError:
        return None
    sid, status = fields.get("MessageSid"), fields.get("MessageStatus")
    if isinstance(sid, str) and MESSAGE_SID_RE.match(sid) and isinstance(status, str) and status:
        return sid, status
    return None


def _bucket_of_text(received: Any, stream_id: str) -> int:
    """The minute of an entry's receive time, or of its stream id (Redis's clock) without one."""
    try:
        value = float(received)
        if math.isfinite(value):
            return ledger.bucket_of(value)
    except (TypeError, ValueError):
        pass
    return ledger.bucket_of(_stream_key(stream_id)[0] / 1000)


def read_queue(client: redis.Redis, stream_key: str) -> Iterator[QueuedEntry]:
    """Every entry still in the stream (new or pending), with its pair when it has one."""
    cursor = "-"
    while True:
        entries = client.xrange(stream_key, min=cursor, count=1000)
        for raw_id, fields in entries:
            stream_id = raw_id.decode()
            method = fields.get(stream.F_METHOD, b"POST")
            raw = fields.get(stream.F_QUERY if method == b"GET" else stream.F_BODY, b"")
            pair = pair_of(raw.decode("utf-8", "replace"))
            bucket = _bucket_of_text(fields.get(stream.F_RECEIVED), stream_id)
            sid, status = pair or ("", "")
            yield QueuedEntry(stream_id, _stream_key(stream_id), bucket, sid, status)
        if len(entries) < 1000:
            return
        ms, seq = _stream_key(entries[-1][0].decode())
        cursor = f"{ms}-{seq + 1}"


def _dead_letter_form(entry: dict[str, Any]) -> str:
    """The callback's form in a dead letter: a stream entry as text (b, q, m, r), or the
    `form` the drain kept for a row the database refused."""
    if "form" in entry:
        return str(entry["form"])
    key = "q" if entry.get("m") == "GET" else "b"
    return str(entry.get(key, ""))


@dataclass(slots=True)
class Stored:
    events: Side = field(default_factory=Side)
    dead: Side = field(default_factory=Side)
    dead_stream_ids: set[str] = field(default_factory=set)
    spans: list[tuple[StreamKey, StreamKey]] = field(default_factory=list)
    statuses: set[str] = field(default_factory=set)


def read_stored(session: Session, start: int, end: int, oldest_queued: StreamKey | None) -> Stored:
    """Audit rows first received in [start, end) (epoch seconds), weighted by their callbacks;
    every dead letter; the receipts that may cover a queued entry. One snapshot: the caller
    runs this in a REPEATABLE READ transaction on PostgreSQL."""
    out = Stored()
    low = datetime.fromtimestamp(start, UTC)
    high = datetime.fromtimestamp(end, UTC)
    rows = session.execute(
        select(
            MessageEvent.message_sid,
            MessageEvent.status,
            MessageEvent.received_at,
            MessageEvent.duplicate_count,
        )
        .where(MessageEvent.received_at >= low, MessageEvent.received_at < high)
        .execution_options(yield_per=5000)
    )
    for sid, status, received_at, duplicates in rows:
        out.statuses.add(status)
        if not MESSAGE_SID_RE.match(sid):
            out.events.unkeyed += 1 + duplicates
            continue
        bucket = ledger.bucket_of_micros(epoch_micros(received_at))
        out.events.add(bucket, sid, status, 1 + duplicates)
    for stream_id, entry in session.execute(select(DeadLetter.stream_id, DeadLetter.entry)):
        out.dead_stream_ids.add(stream_id)
        entry = entry if isinstance(entry, dict) else {}
        pair = pair_of(_dead_letter_form(entry))
        bucket = _bucket_of_text(entry.get("r", entry.get("received")), stream_id)
        if pair is None:
            out.dead.unkeyed += 1
        elif start <= bucket < end:
            out.dead.add(bucket, *pair)
            out.statuses.add(pair[1])
    if oldest_queued is not None:
        receipts = session.execute(
            select(
                CallbackReceipt.first_ms,
                CallbackReceipt.first_seq,
                CallbackReceipt.last_ms,
                CallbackReceipt.last_seq,
            ).where(CallbackReceipt.last_ms >= oldest_queued[0])
        )
        out.spans = sorted(((a, b), (c, d)) for a, b, c, d in receipts)
    return out


def covered(spans: list[tuple[StreamKey, StreamKey]], key: StreamKey) -> bool:
    """Whether a receipt span holds this stream id (spans are disjoint and sorted)."""
    i = bisect.bisect_right(spans, (key, (1 << 63, 0))) - 1
    return i >= 0 and spans[i][0] <= key <= spans[i][1]
