"""The ingress in-process with fakeredis, for the tests of this folder that need their own env."""

from __future__ import annotations

import fakeredis

from ingest.app import create_app
from shared.config import load_settings
from tests.twilio_fixtures import AUTH_TOKEN

PUBLIC = "https://hooks.example.com"
STREAM = "statuspipe:callbacks"


def make_app(**env: str):
    base = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_URL": PUBLIC,
        "REDIS_URL": "redis://unused",
        "DATABASE_URL": "sqlite://",
        "API_TOKEN": "api-token-for-tests",
    }
    base.update(env)
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return create_app(load_settings(base), redis_client=redis), redis
