"""The ingress in-process with fakeredis, for the tests of this folder."""

from __future__ import annotations

import fakeredis

from ingest.app import create_app
from shared.config import load_settings
from tests.twilio_fixtures import AUTH_TOKEN

PUBLIC = "https://hooks.example.com"
STREAM = "statuspipe:callbacks"


def make_app(server: fakeredis.FakeServer | None = None, **env: str):
    """The app on `env` over the defaults, with a fakeredis of its own (or on `server`)."""
    base = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_URL": PUBLIC,
        "REDIS_URL": "redis://unused",
        "DATABASE_URL": "sqlite://",
        "API_TOKEN": "api-token-for-tests",
    }
    base.update(env)
    redis = fakeredis.FakeRedis(server=server or fakeredis.FakeServer())
    return create_app(load_settings(base), redis_client=redis), redis


def make_client(server: fakeredis.FakeServer | None = None, **env: str):
    app, redis = make_app(server, **env)
    return app.test_client(), redis
