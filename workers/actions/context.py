"""What the actions role keeps per process: settings, database, Redis, the error-code map, the
Twilio client, the fleet-wide rate limiter and the alert sinks. Built once, lazily where costly."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client

from shared.bootstrap import error_code_map
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from shared.error_codes import ErrorCodeMap
from shared.twilio_client import make_twilio_client
from workers.actions.rate_limit import RateLimiter
from workers.alerts.sinks import Sink, sinks_from_settings


@dataclass
class ActionContext:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    codes: ErrorCodeMap
    sinks: list[Sink]

    @functools.cached_property
    def twilio(self) -> Client:
        return make_twilio_client(self.settings)

    @functools.cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis, self.settings.twilio_max_rps)

    @property
    def settle_after_seconds(self) -> float:
        """How long a resend may stay in flight before another worker settles it: past the
        REST timeout (twice, connect and read) with a margin, its caller is surely gone."""
        return 2 * self.settings.twilio_timeout_seconds + 5.0

    @classmethod
    def build(cls, settings: Settings) -> ActionContext:
        return cls(
            settings=settings,
            sessions=make_sessionmaker(make_engine(settings)),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=10),
            codes=error_code_map(settings),
            sinks=sinks_from_settings(settings),
        )
