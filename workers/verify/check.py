"""`statuspipe verify`: is everything the ingress acknowledged stored, dead-lettered with a reason,
or still queued in Redis? Reads (workers/verify/sources.py), compares (compare.py), and looks up
what it names in the database so the report says what is known about each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared import ledger
from shared.config import Settings
from shared.models import Message, MessageEvent
from shared.statuses import STATUS_RANKS
from workers.verify.compare import HORIZON_MINUTES, Comparison, Named, Run, compare
from workers.verify.sources import Side, covered, read_ledger, read_queue, read_stored, redis_time


@dataclass(slots=True)
class Finding:
    """A named difference, with what the database knows about the pair."""

    named: Named
    note: str
    explained: bool = False  # duplicates of a pair stored before the walk started


@dataclass(slots=True)
class Verification:
    since: float
    until: float
    clamped_since: bool  # --since was older than the ledger keeps
    acknowledged: int
    stored: int
    dead: int
    queued: int
    findings: list[Finding] = field(default_factory=list)
    unnamed: list[Run] = field(default_factory=list)
    balanced: int = 0
    disagreeing_minutes: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def missing(self) -> list[Finding]:
        return [f for f in self.findings if f.named.copies > 0 and not f.explained]

    @property
    def extra(self) -> list[Finding]:
        return [f for f in self.findings if f.named.copies < 0]

    @property
    def unexplained(self) -> list[Run]:
        """Differences of several pairs that say acknowledged callbacks are missing (or were
        swapped for others). A surplus on the stored side alone is not a loss: callbacks that
        arrived while verify read (see sources.py), rows stored before the ledger existed or
        not through the ingress."""
        return [
            r for r in self.unnamed if ledger.signed(r.difference[0]) >= 0 and not r.ledger_empty
        ]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexplained


def _walk(settings: Settings, since: float, until: float, now: float) -> tuple[int, int, bool]:
    """First and end bucket to walk: the window plus HORIZON minutes each side (retries may land
    outside it), within what the ledger still keeps. The minute still filling is walked too:
    the reading order (sources.py) means callbacks arriving meanwhile can only show as stored
    but not acknowledged, never the other way round."""
    margin = HORIZON_MINUTES * ledger.BUCKET_SECONDS
    kept = now - settings.ledger_retention_hours * 3600 + ledger.BUCKET_SECONDS
    first = ledger.bucket_of(max(since - margin, kept)) + ledger.BUCKET_SECONDS
    end = ledger.bucket_of(min(until + margin, now)) + ledger.BUCKET_SECONDS
    return first, max(end, first), since < kept


def _explain(session: Session, named: Named, walk_start: int) -> Finding:
    event = session.get(MessageEvent, (named.sid, named.status))
    message = session.get(Message, named.sid)
    if message is None:
        seen = "the message is unknown to the database"
    else:
        seen = f"the message is stored with status {message.status}"
    if named.copies < 0:
        return Finding(named, f"stored but not in the ledger; {seen}")
    if event is None:
        return Finding(named, f"no audit row for ({named.sid}, {named.status}); {seen}")
    first = event.received_at.timestamp()
    if first < walk_start and event.duplicate_count >= named.copies:
        note = (
            f"retries of a callback first stored at {_iso(first)}, before the window;"
            f" the audit row counts {event.duplicate_count} duplicates"
        )
        return Finding(named, note, explained=True)
    return Finding(
        named,
        f"the audit row (first received {_iso(first)}) counts {event.duplicate_count}"
        f" duplicates, fewer than were acknowledged",
    )


def _touches(since: float, until: float) -> Callable[[Run], bool]:
    """Whether a run began in the window asked for: the minute its difference appeared (the
    walk's margins are there for differences to cancel, not to be reported)."""
    return lambda run: since - ledger.BUCKET_SECONDS < run.first < until


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def verify(
    settings: Settings,
    client: redis.Redis,
    engine: Engine,
    since: float | None = None,
    until: float | None = None,
) -> Verification:
    """Compare the ledger with the store over [since, until) (epoch seconds; default the last
    24 hours)."""
    now = redis_time(client)
    until = now if until is None else min(until, now)
    since = until - 86400 if since is None else since
    first, end, clamped = _walk(settings, since, until, now)
    buckets = list(range(first, end, ledger.BUCKET_SECONDS))

    acked = read_ledger(client, settings.stream_key, buckets)  # first: see sources.py
    queued_entries = list(read_queue(client, settings.stream_key))
    oldest = min((q.key for q in queued_entries), default=None)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=conn) as session, session.begin():
            stored = read_stored(session, first, end, oldest)
            queued = Side()
            for q in queued_entries:
                # Stored already, not yet deleted from the stream: counted as stored.
                if q.stream_id in stored.dead_stream_ids or covered(stored.spans, q.key):
                    continue
                if not q.sid:
                    queued.unkeyed += 1
                elif first <= q.bucket < end:
                    queued.add(q.bucket, q.sid, q.status)
                    stored.statuses.add(q.status)

            accounted: dict[int, ledger.Tally] = {}
            for side in (stored.events, stored.dead, queued):
                for bucket, tally in side.tallies.items():
                    accounted.setdefault(bucket, ledger.Tally()).merge(tally)
            result: Comparison = compare(
                buckets, acked, accounted, [*STATUS_RANKS, *stored.statuses]
            )
            touches = _touches(since, until)
            findings = [
                _explain(session, n, first) for n in result.named if any(map(touches, n.runs))
            ]
            unnamed = [r for r in result.unnamed if touches(r)]

    in_window = {b for b in buckets if since - ledger.BUCKET_SECONDS < b < until}
    report = Verification(
        since=since,
        until=until,
        clamped_since=clamped,
        acknowledged=sum(t.count() for b, t in acked.items() if b in in_window),
        stored=stored.events.total(in_window),
        dead=stored.dead.total(in_window),
        queued=queued.total(in_window),
        findings=findings,
        unnamed=unnamed,
        balanced=result.balanced,
    )
    for b in buckets:
        a = acked[b].count() if b in acked else 0
        s = stored.events.counts.get(b, 0) + stored.dead.counts.get(b, 0)
        s += queued.counts.get(b, 0)
        if a != s:
            report.disagreeing_minutes.append((b, a, s))
    return report
