"""What an operator sees from `statuspipe`: the dev runner's settings in a second terminal,
one line for a wrong DATABASE_URL, and the migrations `migrate` applied."""

from __future__ import annotations

import os

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from devtools.database import create_database, drop_database
from devtools.ports import free_port
from shared.migrate import alembic_config
from shared.models import DeadLetter
from tests.conftest import BIN, Proc
from tests.integration.cli.runner import statuspipe as run_statuspipe
from tests.twilio_fixtures import new_sid

DEV_SETTINGS_LINE = "using the dev settings of `make run` from var/dev.env"
# What a new terminal does not have.
UNSET = {"DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "API_TOKEN", "PUBLIC_URL"}


def statuspipe(*args: str, env: dict[str, str] | None = None, cwd=None):
    return run_statuspipe(env or {}, *args, cwd=cwd, unset=UNSET)


def test_a_second_terminal_uses_the_dev_runners_settings(tmp_path, pg_url, db):
    with Session(db) as session, session.begin():
        session.add(DeadLetter(stream_id="7-0", reason="MessageStatus is missing", entry={}))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev.env").write_text(f"# by make run\nDATABASE_URL={pg_url}\n")
    result = statuspipe("dead-letters", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MessageStatus is missing" in result.stdout
    assert result.stderr.strip() == DEV_SETTINGS_LINE


def test_settings_in_the_environment_win_over_the_dev_runners(tmp_path, pg_url):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev.env").write_text(f"DATABASE_URL={pg_url}\n")
    result = statuspipe("dead-letters", env={"DATABASE_URL": ""}, cwd=tmp_path)
    assert result.returncode == 1
    assert "DATABASE_URL is required" in result.stderr
    assert DEV_SETTINGS_LINE not in result.stderr


def test_the_dev_runner_writes_what_a_second_terminal_needs(
    tmp_path, pg_url, redis_base_url, redis_client, db
):
    port = free_port()
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis_base_url}
    dev = Proc("dev", [str(BIN / "statuspipe"), "dev", "--port", str(port)], env, tmp_path,
               cwd=tmp_path)  # fmt: skip
    try:
        dev.wait_for_output("statuspipe is up", timeout=60)
        dev.wait_for_output("draining", timeout=30)
        sent = statuspipe(
            "test-webhook", f"http://127.0.0.1:{port}/twilio/status", "--sid", new_sid(),
            cwd=tmp_path,
        )  # fmt: skip
        assert sent.stdout.startswith("200"), sent.stdout + sent.stderr + dev.output()
        assert DEV_SETTINGS_LINE in sent.stderr
        listed = statuspipe("dead-letters", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip() == "no dead letters"
        assert DEV_SETTINGS_LINE in listed.stderr
    finally:
        dev.stop(sig=2, timeout=60)
    assert "Traceback" not in dev.output()


@pytest.mark.parametrize("command", ["migrate", "dead-letters"])
def test_an_unsupported_database_is_one_line_naming_the_supported_ones(command):
    result = statuspipe(command, env={"DATABASE_URL": "mysql://root@127.0.0.1/statuspipe"})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "mysql" in line
    assert "postgresql://" in line
    assert "sqlite:///" in line


@pytest.mark.parametrize("command", ["migrate", "dead-letters"])
def test_an_unreachable_postgresql_is_one_line_with_host_port_and_reason(command):
    port = free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/statuspipe"
    result = statuspipe(command, env={"DATABASE_URL": url})
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"cannot connect to the database at 127.0.0.1:{port}: " in line
    assert line.split(f"127.0.0.1:{port}: ", 1)[1].strip()


def test_migrate_names_each_revision_it_applied_then_that_it_was_current(pg_url):
    name = f"statuspipe_cli_migrate_{os.getpid()}"
    url = create_database(pg_url, name, migrated=False)
    try:
        scripts = ScriptDirectory.from_config(alembic_config(url))
        oldest_first = reversed(list(scripts.walk_revisions()))
        expected = [f"applied {script.revision}: {script.doc}" for script in oldest_first]
        head = scripts.get_current_head()

        first = statuspipe("migrate", env={"DATABASE_URL": url})
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [*expected, f"database schema is up to date at {head}"]
        assert len(expected) >= 5

        again = statuspipe("migrate", env={"DATABASE_URL": url})
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [f"database schema was already up to date at {head}"]
    finally:
        drop_database(pg_url, name)
