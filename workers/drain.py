"""The drain loop: read callbacks from the stream in batches, store them, then acknowledge.

At-least-once: an entry is acknowledged (XACK) and deleted (XDEL) only after the transaction that
stored it committed. Entries held by a worker that died stay pending in the consumer group and are
taken over (XAUTOCLAIM) by any live worker once idle for `claim_idle_seconds`. Storing is
idempotent (see workers.persist), so a takeover never counts a callback twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from shared import stream
from shared.callback import Callback, MalformedCallback, from_entry
from shared.config import Settings
from shared.db import session_scope
from workers.persist import BatchResult, DeadEntry, purge_receipts, store_batch

log = logging.getLogger(__name__)

Entries = list[tuple[bytes, dict[bytes, bytes]]]
Spans = list[tuple[str, str]]

HOUSEKEEPING_EVERY_SECONDS = 600.0
DEAD_CONSUMER_IDLE_MS = 3_600_000
MAX_BACKOFF_SECONDS = 30.0
PROGRESS_EVERY_SECONDS = 30.0


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


def _describe_entry(entry: dict[bytes, bytes]) -> dict[str, str]:
    """The entry as JSON-safe text (PostgreSQL's JSONB refuses NUL characters)."""

    def text(b: bytes) -> str:
        return b.decode("utf-8", "replace").replace("\x00", "\\x00")

    return {text(k): text(v) for k, v in entry.items()}


def parse_entries(entries: Entries) -> tuple[list[Callback], list[DeadEntry]]:
    callbacks: list[Callback] = []
    dead: list[DeadEntry] = []
    for raw_id, fields in entries:
        stream_id = raw_id.decode("ascii")
        try:
            callbacks.append(from_entry(stream_id, fields))
        except MalformedCallback as exc:
            log.error("dead-lettered stream entry %s: %s", stream_id, exc)
            dead.append(DeadEntry(stream_id, str(exc), _describe_entry(fields)))
    return callbacks, dead


def _spans(entries: Entries) -> Spans:
    if not entries:
        return []
    return [(entries[0][0].decode("ascii"), entries[-1][0].decode("ascii"))]


def _is_data_error(exc: BaseException) -> bool:
    """Errors that one bad row causes and that retrying the same rows will not fix: the
    database's data and integrity errors (SQLSTATE classes 22 and 23), and a value that could not
    even be bound. Anything else the database says (a read-only standby, a disk-full database,
    a missing table) is about the database, not the rows: the batch waits, nothing is
    dead-lettered for it."""
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    return isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError)


@dataclass
class Stats:
    stored: int = 0
    redelivered: int = 0
    dead: int = 0
    batches: int = 0
    claimed: int = 0


class Drainer:
    """One consumer of the callback stream. `run()` loops until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.sessions = sessions
        self.name = name or consumer_name()
        self.stop = threading.Event()
        self.stats = Stats()
        self._next_claim = 0.0
        self._next_housekeeping = time.monotonic() + 60.0
        self._next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
        self._progress_mark = (time.monotonic(), 0)  # when and at what count progress was last told

    # --- Redis side -------------------------------------------------------------------------

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
        contiguous run of the stream, so one receipt covers it (see workers.persist)."""
        entries = self._read(self.settings.batch_size, self.settings.block_ms)
        spans = _spans(entries)
        linger = self.settings.batch_linger_ms
        if entries and linger and len(entries) < self.settings.batch_size // 2:
            # A trickle: a short wait turns many one-callback transactions into one, which costs
            # both this worker and PostgreSQL far less CPU per callback.
            if self.stop.wait(linger / 1000):
                return entries, spans
            more = self._read(self.settings.batch_size - len(entries), None)
            entries += more
            spans += _spans(more)
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

    def _ack(self, ids: list[bytes]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.settings.stream_key, self.settings.consumer_group, *ids)
        pipe.xdel(self.settings.stream_key, *ids)
        pipe.execute()

    # --- database side ----------------------------------------------------------------------

    def _store(
        self, callbacks: list[Callback], dead: list[DeadEntry], spans: Spans | None = None
    ) -> BatchResult:
        with session_scope(self.sessions) as session:
            return store_batch(session, callbacks, dead, spans)

    def _store_one_by_one(self, callbacks: list[Callback], dead: list[DeadEntry]) -> BatchResult:
        """A batch the database refused: store each callback alone, dead-letter the ones it
        refuses, so one bad row never blocks the others."""
        total = BatchResult()
        for cb in callbacks:
            try:
                part = self._store([cb], [])
            except sa_exc.SQLAlchemyError as exc:
                if not _is_data_error(exc):
                    raise
                reason = f"database refused it: {str(exc.orig or exc).strip().splitlines()[0]}"
                log.error("dead-lettered %s (%s): %s", cb.stream_id, cb.message_sid, reason)
                entry = {"form": cb.raw, "query": cb.url_query or ""}
                dead.append(DeadEntry(cb.stream_id, reason, entry))
                continue
            total.stored += part.stored
            total.redelivered += part.redelivered
            total.conflicts += part.conflicts
        part = self._store([], dead)
        total.dead = part.dead
        return total

    def process(self, entries: Entries, spans: Spans | None = None) -> BatchResult:
        """Store and acknowledge one batch. Retries transient database errors until it succeeds
        or the worker is stopped; the entries stay pending (and claimable) meanwhile.

        `spans`: the contiguous reads the entries came from; None records each entry alone
        (entries taken over from another consumer are not contiguous)."""
        callbacks, dead = parse_entries(entries)
        backoff = 0.5
        while True:
            try:
                result = self._store(callbacks, list(dead), spans)
                break
            except sa_exc.SQLAlchemyError as exc:
                if _is_data_error(exc):
                    log.warning("batch refused by the database (%s); storing one by one", exc.orig)
                    result = self._store_one_by_one(callbacks, list(dead))
                    break
                log.warning("database unavailable (%s); retrying the batch in %.1fs", exc, backoff)
            if self.stop.wait(backoff):
                raise InterruptedError("stopped while the database was unavailable")
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self._ack([e[0] for e in entries])
        self.stats.batches += 1
        self.stats.stored += result.stored
        self.stats.redelivered += result.redelivered
        self.stats.dead += result.dead
        return result

    # --- loop -------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        with session_scope(self.sessions) as session:
            purged = purge_receipts(session, self.settings.receipt_retention_hours)
        if purged:
            log.info(
                "forgot %d receipts older than %dh", purged, self.settings.receipt_retention_hours
            )
        for name in stream.remove_idle_consumers(
            self.redis,
            self.settings.stream_key,
            self.settings.consumer_group,
            keep=self.name,
            idle_ms=DEAD_CONSUMER_IDLE_MS,
        ):
            log.info("removed idle consumer %s with nothing pending", name)

    def _backlog(self) -> str:
        try:
            return f"{self.redis.xlen(self.settings.stream_key):,}"
        except redis.RedisError:
            return "unknown (Redis unavailable)"

    def _progress(self) -> None:
        """One line with the rate since the previous line and what still waits in the stream,
        so the logs alone tell whether the workers keep up. Silent while nothing is stored."""
        now = time.monotonic()
        since, stored_then = self._progress_mark
        stored = self.stats.stored - stored_then
        self._progress_mark = (now, self.stats.stored)
        if not stored:
            return
        log.info(
            "stored %d callbacks in the last %.0fs (%.0f/s); backlog %s in the stream; since the "
            "start: %d stored in %d batches, %d redelivered, %d claimed, %d dead-lettered",
            stored,
            now - since,
            stored / max(now - since, 1e-9),
            self._backlog(),
            self.stats.stored,
            self.stats.batches,
            self.stats.redelivered,
            self.stats.claimed,
            self.stats.dead,
        )

    def step(self) -> int:
        """One pass: claim stale entries when due, else read new ones. Returns entries handled."""
        now = time.monotonic()
        entries: Entries = []
        if now >= self._next_claim:
            self._next_claim = now + self.settings.claim_interval_seconds
            entries = self._claim_stale()
            if entries:
                self.stats.claimed += len(entries)
                result = self.process(entries)
                # "already stored": the silent worker had committed them and died before its
                # XACK; the receipts made the second delivery harmless.
                log.warning(
                    "took over %d callbacks from a silent worker: %d stored now, %d already stored",
                    len(entries),
                    result.stored,
                    result.redelivered,
                )
                self._next_claim = now  # there may be more
        if not entries:
            entries, spans = self._read_new()
            if entries:
                self.process(entries, spans)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_EVERY_SECONDS
            self._housekeeping()
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY_SECONDS
            self._progress()
        return len(entries)

    def run(self) -> None:
        """Loop until stopped, surviving Redis and database outages."""
        log.info(
            "draining %s as %s in group %s (batch %d, takeover after %.0fs)",
            self.settings.stream_key,
            self.name,
            self.settings.consumer_group,
            self.settings.batch_size,
            self.settings.claim_idle_seconds,
        )
        backoff = 0.5
        group_ready = False
        while not self.stop.is_set():
            try:
                if not group_ready:
                    stream.ensure_group(
                        self.redis, self.settings.stream_key, self.settings.consumer_group
                    )
                    group_ready = True
                self.step()
                backoff = 0.5
            except InterruptedError:
                break
            except redis.RedisError as exc:
                if "NOGROUP" in str(exc):
                    group_ready = False
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception:
                # Unexpected: log it loudly and keep draining; the entries stay pending and
                # are retried or taken over, never dropped.
                log.exception("drain step failed; retrying in %.1fs", backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self._progress()
        log.info(
            "drain stopped after storing %d callbacks (%d redelivered, %d claimed, "
            "%d dead-lettered)",
            self.stats.stored,
            self.stats.redelivered,
            self.stats.claimed,
            self.stats.dead,
        )


def drain_until_empty(drainer: Drainer, idle_passes: int = 2) -> Any:
    """Run passes until nothing is left to read (tests and benchmarks)."""
    empty = 0
    while empty < idle_passes:
        empty = empty + 1 if drainer.step() == 0 else 0
    return drainer.stats
