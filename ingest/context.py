"""What the ingress keeps per process: settings, the Redis enqueuer, the callback verifier, and,
built lazily because only the API uses them, a database session factory and a Twilio client."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client

from ingest.basic_auth import BasicAuth
from ingest.shared_key_signature import SignatureSettingsVerifier
from ingest.signature import SignatureChecker, Verifier
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from shared.stream import Enqueuer
from shared.twilio_client import make_twilio_client


@dataclass
class IngestContext:
    settings: Settings
    redis: redis.Redis
    enqueuer: Enqueuer
    verifier: Verifier | None  # None: SIGNATURE_MODE=off
    basic_auth: BasicAuth | None = None  # None: CALLBACK_BASIC_AUTH not set
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
        verifier: Verifier | None = None
        if settings.signature_mode != "off":
            verifier = SignatureSettingsVerifier(
                settings.public_url,
                SignatureChecker(settings.public_url, settings.auth_tokens),
                settings.twilio_shared_keys,
            )
        return cls(
            settings=settings,
            redis=client,
            enqueuer=Enqueuer(
                client,
                settings.stream_key,
                settings.max_backlog,
                settings.redis_timeout_seconds,
                settings.ledger_retention_hours,
            ),
            verifier=verifier,
            basic_auth=BasicAuth(settings.callback_basic_auth)
            if settings.callback_basic_auth
            else None,
        )

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = make_sessionmaker(make_engine(self.settings))
        return self._sessions

    @functools.cached_property
    def twilio(self) -> Client:
        """For `POST /api/messages`; raises ConfigError when TWILIO_ACCOUNT_SID is not set."""
        return make_twilio_client(self.settings)
