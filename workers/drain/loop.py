"""The drain loop: read callbacks from the stream in batches, store them, then acknowledge.

A batch the database refuses is stored one by one so that one bad row is dead-lettered alone; a
database that is unavailable is waited out with backoff while the entries stay pending (and
claimable by another worker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from redis.client import Pipeline
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from shared import stream
from shared.callback import Callback
from shared.config import Settings
from shared.db import session_scope
from workers.drain.consumer import StreamConsumer
from workers.drain.entries import Entries, Spans, parse_entries
from workers.drain.errors import is_data_error
from workers.drain.housekeeping import HOUSEKEEPING_EVERY_SECONDS, housekeep
from workers.drain.stats import Progress, Stats, counts
from workers.store import BatchResult, DeadEntry, store_batch
from workers.store.batch import PlanActions
from workers.store.rows import EventRow

# The package's one logger (see workers/drain/entries.py).
log = logging.getLogger(__package__)

MAX_BACKOFF_SECONDS = 30.0
DISPATCH_EVERY_SECONDS = 0.2
PROGRESS_EVERY_SECONDS = 30.0


class _Stopped(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised inside a step when the drainer is stopped while it waits; ends `run()`."""


class Drainer(StreamConsumer):
    """One consumer of the callback stream. `run()` loops until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        name: str | None = None,
        plan_actions: PlanActions | None = None,
        dispatch_actions: Callable[[Sequence[int]], None] | None = None,
        publish_changes: Callable[[Pipeline, list[EventRow]], None] | None = None,
    ) -> None:
        super().__init__(settings, client, name)
        self.sessions = sessions
        # Acting on failures (workers/actions): decided in the batch's transaction, handed to
        # the actions queue after its commit. Both None: the drain only stores.
        self.plan_actions = plan_actions
        self.dispatch_actions = dispatch_actions
        self._undispatched: list[int] = []
        self._next_dispatch = 0.0
        # The change feed (workers/changes.py): a batch's new audit rows, after its commit, in
        # the Redis transaction of its XACK.
        self.publish_changes = publish_changes
        self.stats = Stats()
        self._next_claim = 0.0
        self._next_housekeeping = time.monotonic() + 60.0
        self._next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
        self._progress_line = Progress(self.stats)

    # --- storing ----------------------------------------------------------------------------

    def _store(
        self, callbacks: list[Callback], dead: list[DeadEntry], spans: Spans | None = None
    ) -> BatchResult:
        with session_scope(self.sessions) as session:
            return store_batch(session, callbacks, dead, spans, self.plan_actions)

    def _store_one_by_one(self, callbacks: list[Callback], dead: list[DeadEntry]) -> BatchResult:
        """A batch the database refused: store each callback alone, dead-letter the ones it
        refuses, so one bad row never blocks the others."""
        total = BatchResult()
        for cb in callbacks:
            try:
                part = self._store([cb], [])
            except sa_exc.SQLAlchemyError as exc:
                if not is_data_error(exc):
                    raise
                reason = f"database refused it: {str(exc.orig or exc).strip().splitlines()[0]}"
                log.error("dead-lettered %s (%s): %s", cb.stream_id, cb.message_sid, reason)
                # "r": when the ingress took it (verify files it under that minute; replay).
                entry = {"form": cb.raw, "query": cb.url_query or "", "r": repr(cb.received_at)}
                dead.append(DeadEntry(cb.stream_id, reason, entry))
                continue
            total.stored += part.stored
            total.redelivered += part.redelivered
            total.conflicts += part.conflicts
            total.action_ids += part.action_ids
            total.changes += part.changes
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
                if is_data_error(exc):
                    log.warning("batch refused by the database (%s); storing one by one", exc.orig)
                    result = self._store_one_by_one(callbacks, list(dead))
                    break
                log.warning("database unavailable (%s); retrying the batch in %.1fs", exc, backoff)
            if self.stop.wait(backoff):
                raise _Stopped("stopped while the database was unavailable")
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        # Entries without spans are the ones taken over from a silent worker (see step()).
        self.counts_with_ack = counts(result, claimed=len(entries) if spans is None else 0)
        self._ack_and_publish([e[0] for e in entries], result.changes)
        if result.action_ids and self.dispatch_actions is not None:
            self._dispatch(result.action_ids)
        self.stats.batches += 1
        self.stats.stored += result.stored
        self.stats.redelivered += result.redelivered
        self.stats.dead += result.dead
        return result

    def _ack_and_publish(self, ids: list[bytes], changes: list[EventRow]) -> None:
        """The batch's changes go to the feed in the Redis transaction of its XACK: a batch is
        published if and only if it is acknowledged. A worker that dies (or loses Redis) after
        its commit leaves its entries pending; when they are taken over, their receipts say
        "stored" and the store returns the changes they created (workers/store/unpublished.py),
        published then. Nothing is lost, nothing published twice."""
        publish = self.publish_changes
        if not changes or publish is None:
            self._ack(ids)
            return
        (reply,) = self._ack(ids, lambda pipe: publish(pipe, changes))
        if isinstance(reply, Exception):  # the script failed; the XACK went through
            log.error("could not publish %d status changes (%s)", len(changes), reply)

    def _dispatch(self, action_ids: list[int], flush: bool = False) -> None:
        """Hand committed actions to the actions queue, at most every DISPATCH_EVERY_SECONDS:
        one Celery publish costs about 1 ms of CPU, as much as writing the batch's actions, so
        under load batches share one. A worker that dies holding some loses no action: the
        sweeper dispatches what stays pending."""
        self._undispatched += action_ids
        now = time.monotonic()
        if not self._undispatched or (now < self._next_dispatch and not flush):
            return
        self._next_dispatch = now + DISPATCH_EVERY_SECONDS
        ids, self._undispatched = self._undispatched, []
        try:
            assert self.dispatch_actions is not None
            self.dispatch_actions(ids)
        except Exception as exc:  # noqa: BLE001 - the sweeper re-dispatches; never block the drain
            log.warning("could not dispatch %d actions (%s); the sweeper will", len(ids), exc)

    # --- loop -------------------------------------------------------------------------------

    def _progress(self) -> None:
        self._progress_line.tell(self._backlog)

    def step(self) -> int:
        """One pass: claim stale entries when due, else read new ones. Returns entries handled."""
        if self._undispatched and self.dispatch_actions is not None:
            self._dispatch([])  # what the last batches left, once its interval has passed
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
            housekeep(self.settings, self.redis, self.sessions, keep=self.name)
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
            except _Stopped:
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
        if self._undispatched and self.dispatch_actions is not None:
            self._dispatch([], flush=True)
        self._progress()
        log.info(
            "drain stopped after storing %d callbacks (%d redelivered, %d claimed, "
            "%d dead-lettered)",
            self.stats.stored,
            self.stats.redelivered,
            self.stats.claimed,
            self.stats.dead,
        )
