"""Publish each batch's status changes to the change feed, after its transaction committed.

One Redis Stream entry per batch (the contract: shared/changes.py), appended and trimmed by age
in one script call, queued in the Redis transaction that acknowledges the batch
(workers/drain/loop.py): published if and only if acknowledged. The web processes serve it as
/api/stream (SSE) and /api/changes.
"""

from __future__ import annotations

from operator import attrgetter

import redis
from redis.client import Pipeline

from shared import changes
from shared.config import Settings
from workers.store.rows import EventRow

_received = attrgetter("received_at")


class ChangePublisher:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.key = settings.changes_stream_key
        self.retention_ms = settings.changes_retention_seconds * 1000
        self.script = client.register_script(changes.PUBLISH_SCRIPT)

    def queue(self, pipe: Pipeline, rows: list[EventRow]) -> None:
        """Queue the append of the batch's new audit rows, oldest callback first, in `pipe`."""
        ordered = sorted((r.first for r in rows), key=_received)
        wire = [(cb.message_sid, cb.status, cb.error_code, cb.error_message, cb.to, cb.from_,
                 cb.received_at) for cb in ordered]  # fmt: skip
        self.script(
            keys=[self.key], args=[self.retention_ms, changes.FIELD, changes.encode(wire)],
            client=pipe,
        )  # fmt: skip
