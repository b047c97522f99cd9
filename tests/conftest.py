from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from devtools.app_env import app_env
from devtools.database import create_database, drop_database, truncate_all
from devtools.processes import Proc
from devtools.procfile import BIN, ROOT
from devtools.procfile import command as procfile_command
from devtools.web_ready import wait_workers_ready
from shared.config import Settings, load_settings
from shared.db import make_engine
from shared.migrate import upgrade
from tests import services
from tests.log_leaks import leaks, secrets_of
from tests.twilio_fixtures import AUTH_TOKEN

# Imported from here by test modules: the Procfile's commands as the tests run them.
__all__ = ["BIN", "ROOT", "Proc", "procfile_command"]

API_TOKEN = "test-api-token"


# --- services -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_base_url() -> Iterator[str]:
    url, server = services.redis_url()
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, migrated with Alembic."""
    url, server = services.postgres_url()
    name = f"statuspipe_test_{os.getpid()}"
    yield create_database(url, name)
    drop_database(url, name)
    if server:
        server.stop()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(pg_engine: Engine) -> Iterator[Engine]:
    """The test database, emptied after the test."""
    yield pg_engine
    truncate_all(pg_engine)


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """(URL, engine) of the test PostgreSQL database, then of a migrated SQLite file (the
    database of `make run`): for the rules that must hold on both."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_url"), request.getfixturevalue("db")
        return
    url = f"sqlite:///{tmp_path / 'statuspipe.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def any_db(any_database: tuple[str, Engine]) -> Engine:
    return any_database[1]


@pytest.fixture
def redis_client(redis_base_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_base_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_env(pg_url: str, redis_url: str, **overrides: Any) -> dict[str, str]:
    """A process's settings for a test: short claim and block times keep takeovers quick."""
    fast = {"CLAIM_IDLE_SECONDS": "2", "CLAIM_INTERVAL_SECONDS": "0.5", "BLOCK_MS": "200"}
    return app_env(
        pg_url,
        redis_url,
        auth_token=AUTH_TOKEN,
        api_token=API_TOKEN,
        public_url="https://hooks.example.com",
        **{**fast, **overrides},
    )


@pytest.fixture
def settings(pg_url: str, redis_base_url: str) -> Settings:
    return load_settings(make_env(pg_url, redis_base_url))


# --- processes ------------------------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Starts a process for the test; stops it after, and fails the test if any line the
    process logged holds one of its secrets or a full phone number (tests/log_leaks.py)."""
    procs: list[tuple[Proc, set[str]]] = []

    def _spawn(name: str, cmd: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, cmd, env, tmp_path)
        procs.append((proc, secrets_of(env)))
        return proc

    yield _spawn
    found = []
    for proc, secrets in procs:
        proc.stop()
        found += [f"{proc.name} ({proc.log_path}) {leak}" for leak in leaks(proc.output(), secrets)]
    assert found == [], "log lines that leak (see the files):\n" + "\n".join(found)


def start_web(
    spawn: Callable[..., Proc], env: dict[str, str], port: int | None = None
) -> tuple[Proc, str]:
    """`port`: one chosen beforehand, when PUBLIC_URL must name the ingress's own address."""
    port = port or services.free_port()
    env = {"WEB_CONCURRENCY": "2", **env, "PORT": str(port)}  # two processes unless told
    proc = spawn("gunicorn", procfile_command("web"), env)
    try:
        services.wait_port(port, timeout=20)
        # The port opens before the workers have loaded the app: a test's first requests
        # would otherwise wait for (and race with) the imports.
        wait_workers_ready(proc, timeout=60)
    except (TimeoutError, RuntimeError):
        raise AssertionError(f"gunicorn did not start:\n{proc.output()}") from None
    return proc, f"http://127.0.0.1:{port}"


def start_worker(spawn: Callable[..., Proc], env: dict[str, str]) -> Proc:
    proc = spawn("celery", procfile_command("worker"), env)
    proc.wait_for_output("draining")
    return proc
