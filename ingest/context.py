"""What the ingress keeps per process: settings, the Redis enqueuer, the signature checker and a
lazily built database session factory (only the read API uses it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session, sessionmaker

from ingest.signature import SignatureChecker
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from shared.stream import Enqueuer


@dataclass
class IngestContext:
    settings: Settings
    redis: redis.Redis
    enqueuer: Enqueuer
    signatures: SignatureChecker | None
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None) -> IngestContext:
        if client is None:
            # No client-side retries: past the timeout the answer is a 503 and Twilio retries.
            client = redis.Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_seconds,
                socket_connect_timeout=settings.redis_timeout_seconds,
                retry=Retry(NoBackoff(), 0),
            )
        signatures = None
        if settings.signature_mode != "off":
            signatures = SignatureChecker(settings.public_url, settings.auth_tokens)
        return cls(
            settings=settings,
            redis=client,
            enqueuer=Enqueuer(
                client, settings.stream_key, settings.max_backlog, settings.redis_timeout_seconds
            ),
            signatures=signatures,
        )

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = make_sessionmaker(make_engine(self.settings))
        return self._sessions
