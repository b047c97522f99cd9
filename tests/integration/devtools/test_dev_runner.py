"""`make run` as a new user meets it: nothing set, so SQLite, the embedded Redis and the fake
Twilio API; a message sent with `statuspipe send` comes back delivered through every role."""

from __future__ import annotations

import json
import time
import urllib.request

from devtools.ports import free_port
from tests.conftest import BIN, Proc
from tests.integration.cli.runner import statuspipe

# A new terminal: none of the settings the test session itself may carry.
UNSET = ("DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "API_TOKEN",
         "PUBLIC_URL", "TWILIO_API_BASE_URL")  # fmt: skip


def test_make_run_sends_and_records_a_delivery_on_embedded_defaults(tmp_path):
    port = free_port()
    dev = Proc("dev", [str(BIN / "statuspipe"), "dev", "--port", str(port)],
               {name: "" for name in UNSET}, tmp_path, cwd=tmp_path)  # fmt: skip
    try:
        dev.wait_for_output("statuspipe is up", timeout=90)
        dev.wait_for_output("draining", timeout=30)
        assert "fake Twilio API" in dev.output()
        sent = statuspipe({}, "send", "--to", "+15005550006", "--from", "+15005550001",
                          "--body", "hello", cwd=tmp_path, unset=UNSET)  # fmt: skip
        assert sent.returncode == 0, sent.stderr + dev.output()
        sid = json.loads(sent.stdout)["sid"]
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status != "delivered":
            time.sleep(0.3)
            status = _status(tmp_path, sid)
        assert status == "delivered", dev.output()[-3000:]
    finally:
        dev.stop(sig=2, timeout=60)
    assert "Traceback" not in dev.output()


def _status(cwd, sid: str) -> str | None:
    """The message's status as the read API answers it, with the dev runner's token."""
    env = dict(
        line.split("=", 1) for line in (cwd / "var" / "dev.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{env['PORT']}/api/messages/{sid}",
        headers={"Authorization": f"Bearer {env['API_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["status"]
