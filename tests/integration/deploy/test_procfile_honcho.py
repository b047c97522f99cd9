"""The Procfile, whole, as `heroku local` runs it: honcho runs the release phase, then starts
every other role from the same file with one environment file, against real PostgreSQL and
Redis. Signed callbacks sent to `web` end up stored; SIGTERM to honcho stops every role."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devtools.database import create_database, drop_database
from devtools.procfile import read_procfile
from tests import services
from tests.conftest import BIN, ROOT, make_env
from tests.integration.deploy.conftest import stored_events
from tests.integration.test_pipeline import send
from tests.twilio_fixtures import callback_fields, new_sid
from tests.waiting import wait_for

# What each role prints once it is up and working (the dev runner waits for the same lines).
READY = {"web": "Booting worker", "worker": "draining", "actions": "sweeping",
         "beat": "beat: Starting"}  # fmt: skip


def write_env_file(path: Path, env: dict[str, str]) -> None:
    # honcho reads it as `heroku local` reads .env: one NAME=value per line.
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()))


def test_the_procfile_runs_whole_under_honcho_and_stores_signed_callbacks(
    tmp_path, spawn, pg_url, redis_base_url, redis_client
):
    # A fresh, unmigrated database on the tests' server: the release phase has to bring it up.
    name = f"statuspipe_honcho_{os.getpid()}"
    database = create_database(pg_url, name, migrated=False)
    try:
        run_procfile(tmp_path, spawn, database, redis_base_url)
    finally:
        drop_database(pg_url, name)


def run_procfile(tmp_path, spawn, database, redis_url):
    roles = read_procfile()
    port = services.free_port()
    env_file = tmp_path / ".env"
    write_env_file(env_file, make_env(database, redis_url))
    # honcho finds gunicorn, celery and statuspipe on PATH, as the slug's bin/ on Heroku.
    path_env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    honcho = [str(BIN / "honcho"), "-e", str(env_file), "-d", str(ROOT),
              "-f", str(ROOT / "Procfile")]  # fmt: skip

    # The release phase runs first, alone, and must succeed before anything starts.
    release = spawn("release", [*honcho, "run", *roles["release"]], path_env)
    assert release.proc.wait(timeout=120) == 0, release.output()
    assert "database schema" in release.output()

    others = [role for role in roles if role != "release"]
    # -p: honcho hands PORT to the first role, web, as Heroku hands it to each web dyno.
    assert others[0] == "web"
    app = spawn("honcho", [*honcho, "start", "-p", str(port), *others], path_env)
    for role in others:
        app.wait_for_output(READY.get(role, f"{role}."), timeout=60)
    services.wait_port(port, timeout=30)

    base = f"http://127.0.0.1:{port}"
    sids = [new_sid() for _ in range(200)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda s: send(base, callback_fields(s, "delivered"))[0], sids))
    assert codes == [200] * len(sids)
    wait_for(lambda: set(sids) <= set(events_in(database)), timeout=60, what="stored callbacks")
    assert set(events_in(database).values()) == {0}

    app.stop(signal.SIGTERM, timeout=60)
    assert app.proc.returncode is not None
    output = app.output()
    assert "Traceback" not in output, output[-3000:]
    for role in others:
        assert f"{role}." in output  # honcho prefixes every line with its role


def events_in(database_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    try:
        return stored_events(engine)
    finally:
        engine.dispose()
