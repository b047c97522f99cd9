"""The Redis side of a drain: one consumer in the stream's consumer group.

It reads new entries (lingering briefly for more under light load), takes over entries another
consumer has held too long (XAUTOCLAIM), and acknowledges and deletes entries once stored.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

from shared import worker_counters
from shared.config import Settings
from workers.drain.entries import Entries, Spans, spans_of


def redis_client(settings: Settings) -> redis.Redis:
    """The drain's Redis connection: generous timeouts, since a blocked read waits BLOCK_MS."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=30,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def consumer_name() -> str:
    """Unique per process, so a restarted worker never mistakes old pending entries for its own."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamConsumer:
    """Reads, claims and acknowledges entries as `name` in the settings' group; `stop` cuts a
    linger short."""

    def __init__(self, settings: Settings, client: redis.Redis, name: str | None = None) -> None:
        self.settings = settings
        self.redis = client
        self.name = name or consumer_name()
        self.stop = threading.Event()
        # Set by the drain for the next _ack: what that batch adds to the workers' counters.
        self.counts_with_ack: dict[str, int] = {}

    def _read(self, count: int, block_ms: int | None) -> Entries:
        reply = self.redis.xreadgroup(
            self.settings.consumer_group,
            self.name,
            {self.settings.stream_key: ">"},
            count=count,
            block=block_ms,
        )
        return reply[0][1] if reply else []

    def _read_new(self) -> tuple[Entries, Spans]:
        """New entries, and the span of stream ids each read covered: a read with ">" is a
        contiguous run of the stream, so one receipt covers it (see workers/store/receipts.py)."""
        entries = self._read(self.settings.batch_size, self.settings.block_ms)
        spans = spans_of(entries)
        linger = self.settings.batch_linger_ms
        if entries and linger and len(entries) < self.settings.batch_size // 2:
            # A trickle: a short wait turns many one-callback transactions into one, which costs
            # both this worker and PostgreSQL far less CPU per callback.
            if self.stop.wait(linger / 1000):
                return entries, spans
            more = self._read(self.settings.batch_size - len(entries), None)
            entries += more
            spans += spans_of(more)
        return entries, spans

    def _claim_stale(self) -> Entries:
        """Take over entries another consumer has held longer than the claim timeout."""
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        claimed: Entries = []
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.redis.xautoclaim(
                self.settings.stream_key,
                self.settings.consumer_group,
                self.name,
                min_idle_time=idle_ms,
                start_id=cursor,
                count=self.settings.batch_size,
            )
            # Deleted entries come back as None placeholders: their callback is already stored.
            claimed.extend(e for e in entries if e and e[1] is not None)
            cursor = cursor.decode() if isinstance(cursor, bytes) else cursor
            if cursor == "0-0" or len(claimed) >= self.settings.batch_size:
                return claimed

    def _ack(self, ids: list[bytes], also: Callable[[Pipeline], None] | None = None) -> list[Any]:
        """Acknowledge and delete `ids`, in one Redis transaction (MULTI/EXEC) with what `also`
        queues (the batch's change feed entry): all of it happens, or, when the connection
        fails, none. Returns the replies of what `also` queued (an error as an exception)."""
        # What the batch adds to the workers' counters (shared/worker_counters.py) travels in the
        # same round trip, so a batch is counted when, and only when, it is acknowledged; taken
        # first, so that an ack that fails (the batch is read again) does not count it either.
        counts, self.counts_with_ack = self.counts_with_ack, {}
        pipe = self.redis.pipeline(transaction=True)
        if also is not None:
            also(pipe)
        queued = len(pipe)
        pipe.xack(self.settings.stream_key, self.settings.consumer_group, *ids)
        pipe.xdel(self.settings.stream_key, *ids)
        worker_counters.add(pipe, self.settings.stream_key, counts)
        replies = pipe.execute(raise_on_error=False)
        for reply in replies[queued:]:
            if isinstance(reply, Exception):
                raise reply
        return replies[:queued]

    def _backlog(self) -> str:
        """What still waits in the stream, as text for the progress line."""
        try:
            return f"{self.redis.xlen(self.settings.stream_key):,}"
        except redis.RedisError:
            return "unknown (Redis unavailable)"
