"""What the pipeline looks like right now, read from Redis and PostgreSQL when asked.

Read at scrape time (and by the dashboard) rather than counted: the backlog, what workers hold,
and the age of the oldest callback not yet stored are facts of the stream, whichever process
looks. Every read is bounded: a few O(1) Redis commands in one round trip, and PostgreSQL queries
over small tables only (dead letters, alert groups) under a statement timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from shared import worker_counters
from shared.models import AlertGroup, DeadLetter

STATEMENT_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class StreamState:
    backlog: int  # callbacks in the stream: accepted, not yet stored
    pending: int  # of those, read by a worker and not yet acknowledged
    lag_seconds: float  # age of the oldest callback not yet stored; 0 when none waits


def stream_state(client: redis.Redis, stream_key: str, group: str) -> StreamState:
    """One round trip. Raises redis errors when Redis is away."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream_key)
    pipe.xrange(stream_key, count=1)
    pipe.time()
    pipe.xpending(stream_key, group)
    length, first, (seconds, micros), pending = pipe.execute(raise_on_error=False)
    for result in (length, first):
        if isinstance(result, Exception):
            raise result
    # Entries leave the stream once stored, so the first one is the oldest not stored; its id
    # is Redis's clock when it was appended, compared with Redis's clock now (no skew).
    lag = 0.0
    if first:
        appended_ms = int(first[0][0].split(b"-")[0])
        lag = max(0.0, seconds + micros / 1e6 - appended_ms / 1000)
    # No group yet (no worker ever ran): nothing is pending.
    held = 0 if isinstance(pending, Exception) else int(pending["pending"])
    return StreamState(backlog=int(length), pending=held, lag_seconds=lag)


def worker_totals(
    client: redis.Redis, stream_key: str
) -> dict[worker_counters.Family, dict[tuple[str, ...], int]]:
    return worker_counters.read(client, stream_key)


@dataclass(frozen=True)
class DatabaseState:
    dead_letters: int  # rows in dead_letters
    alerts_sent: dict[str, int]  # alert groups posted, by kind
    alerts_open: int  # alert groups not posted yet (window open, or a sink retrying)


def database_state(sessions: sessionmaker[Session]) -> DatabaseState:
    """Raises SQLAlchemy errors when PostgreSQL is away or slower than the timeout."""
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        dead = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
        by_state = session.execute(
            select(AlertGroup.state, AlertGroup.kind, func.count()).group_by(
                AlertGroup.state, AlertGroup.kind
            )
        ).all()
    sent = {kind: n for state, kind, n in by_state if state == "sent"}
    pending = sum(n for state, _, n in by_state if state != "sent")
    return DatabaseState(dead_letters=dead, alerts_sent=sent, alerts_open=pending)
