"""What the deploy tests share: the processes' settings, a backlog appended as the ingress
appends it, and what PostgreSQL holds afterwards."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared import stream
from shared.models import MessageEvent
from tests.conftest import make_env
from tests.twilio_fixtures import callback_fields


@pytest.fixture
def env(pg_url, redis_base_url, redis_client, db) -> dict[str, str]:
    return make_env(pg_url, redis_base_url)


def preload(client: redis.Redis, env: dict[str, str], sids: list[str]) -> None:
    """One `delivered` callback per sid, appended in one MULTI/EXEC as the ingress appends
    them (shared/stream.py's fields), so every waiting worker sees the backlog at once."""
    key = env.get("STREAM_KEY", "statuspipe:callbacks")
    group = env.get("CONSUMER_GROUP", "statuspipe")
    stream.ensure_group(client, key, group)
    now = repr(time.time())
    pipe = client.pipeline(transaction=True)
    for sid in sids:
        body = urlencode(callback_fields(sid, "delivered")).encode()
        pipe.xadd(key, {stream.F_BODY: body, stream.F_RECEIVED: now})
    pipe.execute()


def stored_events(db: Engine) -> dict[str, int]:
    """{message sid: duplicate count} of every audit row."""
    with Session(db) as session:
        rows = session.execute(select(MessageEvent.message_sid, MessageEvent.duplicate_count))
        return dict(rows.all())


def event_count(db: Engine) -> int:
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(MessageEvent)) or 0
