"""The `statuspipe` command and `make run`'s dev runner, as an operator uses them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

from sqlalchemy.orm import Session

from shared.models import DeadLetter
from tests import services
from tests.conftest import BIN, ROOT, Proc, make_env, procfile_command, start_web
from tests.integration.cli.runner import statuspipe
from tests.twilio_fixtures import AUTH_TOKEN, new_sid


def test_release_phase_migrates_idempotently(pg_url, redis_base_url):
    env = {**os.environ, **make_env(pg_url, redis_base_url)}
    for _ in range(2):
        result = subprocess.run(
            procfile_command("release"), env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


def test_migrate_without_database_url_names_it(tmp_path):
    result = statuspipe({"DATABASE_URL": ""}, "migrate")
    assert result.returncode != 0
    assert "DATABASE_URL is required" in result.stderr


def test_test_webhook_is_accepted_and_stored(spawn, pg_url, redis_client, redis_base_url, db):
    env = make_env(pg_url, redis_base_url)
    _, base = start_web(spawn, env)
    sid = new_sid()
    result = statuspipe(
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN},
        "test-webhook", f"{base}/twilio/status", "--sid", sid,
        "--signed-url", "https://hooks.example.com/twilio/status",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200")
    bad = statuspipe({"TWILIO_AUTH_TOKEN": "wrong"}, "test-webhook", f"{base}/twilio/status")
    assert bad.returncode == 1
    assert bad.stdout.startswith("403 invalid X-Twilio-Signature")


def test_dead_letters_lists_reasons(pg_url, redis_base_url, db):
    with Session(db) as session, session.begin():
        session.add(DeadLetter(stream_id="1-0", reason="MessageSid is missing", entry={"b": ""}))
    env = make_env(pg_url, redis_base_url)
    result = statuspipe(env, "dead-letters")
    assert "MessageSid is missing" in result.stdout
    result = statuspipe(env, "dead-letters", "--json")
    assert json.loads(result.stdout.splitlines()[0])["stream_id"] == "1-0"


def test_dev_runner_brings_up_everything_on_embedded_defaults(tmp_path):
    """What `make run` does: no DATABASE_URL, no REDIS_URL, nothing configured."""
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(PYTHONUNBUFFERED="1")
    proc = Proc("dev", [str(BIN / "statuspipe"), "dev", "--port", str(port)], env, tmp_path)
    try:
        proc.wait_for_output("statuspipe is up", timeout=60)
        proc.wait_for_output("draining", timeout=30)
        out = proc.output()
        assert "sqlite:///" in out
        dev_env = dict(
            line.split("=", 1)
            for line in (ROOT / "var" / "dev.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        sid = new_sid()
        result = statuspipe(
            {"TWILIO_AUTH_TOKEN": dev_env["TWILIO_AUTH_TOKEN"]},
            "test-webhook", f"http://127.0.0.1:{port}/twilio/status", "--sid", sid,
        )  # fmt: skip
        assert result.stdout.startswith("200"), result.stdout + out
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/messages/{sid}",
            headers={"Authorization": f"Bearer {dev_env['API_TOKEN']}"},
        )

        def stored():
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    return json.loads(resp.read())["status"] == "delivered"
            except OSError:
                return False

        from tests.waiting import wait_for

        wait_for(stored, what="the sample callback in SQLite")
    finally:
        proc.proc.send_signal(signal.SIGINT)
        proc.proc.wait(timeout=60)
        proc.log.close()
    assert proc.proc.returncode == 0, proc.output()[-2000:]
    assert "stopped" in proc.output()
    assert "Traceback" not in proc.output()
