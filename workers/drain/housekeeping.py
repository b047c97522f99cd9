"""Now and then: forget old receipts, and remove consumers that died with nothing pending."""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session, sessionmaker

from shared import stream
from shared.config import Settings
from shared.db import session_scope
from workers.store import purge_receipts

# The package's one logger (see workers/drain/entries.py).
log = logging.getLogger(__package__)

HOUSEKEEPING_EVERY_SECONDS = 600.0
DEAD_CONSUMER_IDLE_MS = 3_600_000


def housekeep(
    settings: Settings, client: redis.Redis, sessions: sessionmaker[Session], keep: str
) -> None:
    """Purge receipts past the retention and idle consumers other than `keep` (this one)."""
    with session_scope(sessions) as session:
        purged = purge_receipts(session, settings.receipt_retention_hours)
    if purged:
        log.info("forgot %d receipts older than %dh", purged, settings.receipt_retention_hours)
    for name in stream.remove_idle_consumers(
        client,
        settings.stream_key,
        settings.consumer_group,
        keep=keep,
        idle_ms=DEAD_CONSUMER_IDLE_MS,
    ):
        log.info("removed idle consumer %s with nothing pending", name)
