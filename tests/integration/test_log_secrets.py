"""No log line, at DEBUG, holds an auth token, a shared-key secret, the API token or a full
phone number: a realistic slice of statuspipe (gunicorn, the drain worker, the actions role, the
fake Twilio reached by the official client) runs at LOG_LEVEL=DEBUG through sends, a failure
and its resend, contact lookups, refused tokens and refused signatures, and every line every
process wrote is searched."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import pytest
from twilio.request_validator import RequestValidator

from devtools.fake_twilio import FakeTwilio
from tests.conftest import API_TOKEN, make_env, procfile_command, start_web, start_worker
from tests.integration.test_pipeline import PUBLIC, http
from tests.twilio_fixtures import AUTH_TOKEN, FORM, callback_fields, new_sid
from tests.waiting import wait_for

ACCOUNT = "AC" + "7" * 32
SENDER = "+15005550001"
TO = "+15005550006"
SHARED_SECRET = "shared-key-secret-never-logged-42"
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def fake():
    with FakeTwilio(account_sid=ACCOUNT, auth_token=AUTH_TOKEN) as f:
        yield f


def test_no_secret_and_no_full_number_in_any_log_line(spawn, pg_url, redis_base_url,
                                                       redis_client, db, fake):  # fmt: skip
    env = make_env(
        pg_url, redis_base_url, LOG_LEVEL="DEBUG", TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_API_BASE_URL=fake.base_url, TWILIO_TIMEOUT="1", RETRY_BACKOFF_SECONDS="0.2",
        BATCH_LINGER_MS="0", TWILIO_SHARED_KEYS=f"rot1={SHARED_SECRET}",
    )  # fmt: skip
    web, base = start_web(spawn, env)
    fake.routes[PUBLIC] = base
    worker = start_worker(spawn, env)
    actions = spawn("actions", procfile_command("actions"), env)
    actions.wait_for_output("sweeping")
    procs = [web, worker, actions]

    # A send, its failure, the resend the actions role makes (REST calls carry the numbers).
    doc = json.dumps({"to": TO, "from": SENDER, "body": "hi"}).encode()
    status, raw, _ = http("POST", base + "/api/messages", doc, AUTH)
    assert status == 201, raw
    first = json.loads(raw)["sid"]
    fake.send_status(first, "undelivered", 30003)
    wait_for(lambda: len(fake.created) == 2, timeout=30, what="the resend")
    # Lookups and refusals that put numbers, tokens and keys in front of the logging code.
    http("GET", base + f"/api/contacts/{quote(TO)}", headers=AUTH)
    for token in ("wrong", AUTH_TOKEN, SHARED_SECRET):
        assert (
            http("GET", base + "/api/messages", headers={"Authorization": f"Bearer {token}"})[0]
            == 401
        )
    fields = callback_fields(new_sid(), "sent", To=TO)
    body = urlencode(fields).encode()
    for settings in ("key=rot1,algorithm=HMAC_SHA256", "key=gone,algorithm=HMAC_SHA256",
                     "key=rot1,algorithm=HMAC_MD5"):  # fmt: skip
        sig = RequestValidator(AUTH_TOKEN).compute_signature(
            PUBLIC + "/twilio/status?to=" + quote(TO), fields
        )
        http("POST", base + "/twilio/status?to=" + quote(TO), body,
             {"Content-Type": FORM, "X-Twilio-Signature": sig,
              "X-Twilio-Webhooks-Signature-Settings": settings})  # fmt: skip

    for proc in procs:
        proc.stop()
    text = "\n".join(proc.output() for proc in procs)
    assert "DEBUG" in text  # the run did log at DEBUG
    assert "*******0006" in text  # numbers did reach the logs, masked
    for secret in (AUTH_TOKEN, API_TOKEN, SHARED_SECRET):
        assert secret not in text, secret
    digits = re.compile(r"(?<!\d)(1500555000[16])(?!\d)")
    leaks = [line for line in text.splitlines() if digits.search(line)]
    assert leaks == []
