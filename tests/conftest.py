from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from shared.config import Settings, load_settings
from shared.migrate import upgrade
from tests import services
from tests.twilio_fixtures import AUTH_TOKEN

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
API_TOKEN = "test-api-token"
TABLES = "messages, message_events, callback_receipts, dead_letters"


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
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"statuspipe_test_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    upgrade(db_url)
    yield db_url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
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
    with pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))


@pytest.fixture
def redis_client(redis_base_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_base_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_env(pg_url: str, redis_url: str, **overrides: Any) -> dict[str, str]:
    env = {
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "API_TOKEN": API_TOKEN,
        "PUBLIC_URL": "https://hooks.example.com",
        "CLAIM_IDLE_SECONDS": "2",
        "CLAIM_INTERVAL_SECONDS": "0.5",
        "BLOCK_MS": "200",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def settings(pg_url: str, redis_base_url: str) -> Settings:
    return load_settings(make_env(pg_url, redis_base_url))


# --- processes ------------------------------------------------------------------------------


class Proc:
    """A child process whose output goes to a file, shown when a test fails."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], tmp: Path) -> None:
        self.name = name
        self.log_path = tmp / f"{name}-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never printed {needle!r}:\n{self.output()[-3000:]}")

    def stop(self, sig: int = 15, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def _spawn(name: str, cmd: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, cmd, env, tmp_path)
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        proc.stop()


def procfile_command(process: str) -> list[str]:
    """A Procfile line as Heroku runs it, so the tests prove each line works as is."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            argv = shlex.split(command)
            return [str(BIN / argv[0]), *argv[1:]]
    raise KeyError(f"no {process!r} line in the Procfile")


def start_web(spawn: Callable[..., Proc], env: dict[str, str]) -> tuple[Proc, str]:
    port = services.free_port()
    env = {**env, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    proc = spawn("gunicorn", procfile_command("web"), env)
    try:
        services.wait_port(port, timeout=20)
    except TimeoutError:
        raise AssertionError(f"gunicorn did not start:\n{proc.output()}") from None
    return proc, f"http://127.0.0.1:{port}"


def start_worker(spawn: Callable[..., Proc], env: dict[str, str]) -> Proc:
    proc = spawn("celery", procfile_command("worker"), env)
    proc.wait_for_output("draining")
    return proc
