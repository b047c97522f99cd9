"""`statuspipe configure-callback`: a Messaging Service's StatusCallback set through the fake
Twilio (official client, TWILIO_API_BASE_URL), only after a signed sample callback to the real
gunicorn ingress answered 200."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID
from shared.stream import F_BODY
from tests import services
from tests.conftest import BIN, ROOT, make_env, start_web

OVERRIDES = "rc=3&rp=ct,rt,5xx&ct=2000&rt=3000"
OLD_CALLBACK = "https://old.example.com/status"
STREAM_KEY = "statuspipe:callbacks"


def cli_env(pg_url, redis_url, fake, public_url, **overrides):
    """The operator's terminal: the account's credentials and the ingress's public URL."""
    return make_env(
        pg_url,
        redis_url,
        PUBLIC_URL=public_url,
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_API_BASE_URL=fake.base_url,
        CALLBACK_CONNECTION_OVERRIDES=OVERRIDES,
        **overrides,
    )


def start_ingress(spawn, pg_url, redis_url, **overrides):
    """gunicorn whose PUBLIC_URL is its own address, so a callback signed for it validates."""
    port = services.free_port()
    base = f"http://127.0.0.1:{port}"
    start_web(spawn, make_env(pg_url, redis_url, PUBLIC_URL=base, **overrides), port=port)
    return base


def configure(env, *args):
    return subprocess.run(
        [str(BIN / "statuspipe"), "configure-callback", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def updates(fake):
    return [r for r in fake.requests if r.method == "POST"]


def stream_bodies(redis_client):
    return [fields[F_BODY].decode() for _, fields in redis_client.xrange(STREAM_KEY)]


def test_sets_the_service_callback_once_the_ingress_accepted_a_signed_sample(
    spawn, pg_url, redis_base_url, redis_client, fake
):
    base = start_ingress(spawn, pg_url, redis_base_url)
    service = fake.add_messaging_service(status_callback=OLD_CALLBACK)
    result = configure(cli_env(pg_url, redis_base_url, fake, base), "--messaging-service", service)
    assert result.returncode == 0, result.stderr
    url = f"{base}/twilio/status#{OVERRIDES}"
    assert fake.messaging_service(service).fields["status_callback"] == url
    assert f"{service} (statuspipe test service): StatusCallback {url}" in result.stdout
    assert f"(was {OLD_CALLBACK})" in result.stdout
    # The sample went through the ingress into the stream, the sid printed.
    sample = re.search(r"sample callback \((SM[0-9a-f]{32}), status sent\)", result.stdout)
    assert sample, result.stdout
    [body] = stream_bodies(redis_client)
    assert f"MessageSid={sample.group(1)}" in body
    assert f"MessagingServiceSid={service}" in body
    # And Twilio's own callbacks for the service's messages now reach statuspipe.
    sid = fake.add_message("+15005550010", status="queued", messaging_service_sid=service)
    assert fake.send_status(sid, "delivered").status_code == 200


def test_refuses_when_the_ingress_does_not_answer(pg_url, redis_base_url, fake):
    service = fake.add_messaging_service(status_callback=OLD_CALLBACK)
    down = f"http://127.0.0.1:{services.free_port()}"
    result = configure(cli_env(pg_url, redis_base_url, fake, down), "--messaging-service", service)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: not configured: a sample callback to {down}/twilio/status")
    assert "got no answer" in line
    assert fake.messaging_service(service).fields["status_callback"] == OLD_CALLBACK
    assert updates(fake) == []


def test_refuses_when_the_ingress_checks_another_token(
    spawn, pg_url, redis_base_url, redis_client, fake
):
    base = start_ingress(
        spawn, pg_url, redis_base_url, TWILIO_AUTH_TOKEN="stale_token_00000000000000000000"
    )
    service = fake.add_messaging_service(status_callback=OLD_CALLBACK)
    result = configure(cli_env(pg_url, redis_base_url, fake, base), "--messaging-service", service)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert f"sample callback to {base}/twilio/status answered 403" in line
    assert "TWILIO_AUTH_TOKEN" in line
    assert fake.messaging_service(service).fields["status_callback"] == OLD_CALLBACK
    assert updates(fake) == []
    assert stream_bodies(redis_client) == []


def test_a_phone_number_configures_the_services_whose_pool_holds_it(
    spawn, pg_url, redis_base_url, redis_client, fake
):
    base = start_ingress(spawn, pg_url, redis_base_url)
    number = "+15005550002"
    holding = [
        fake.add_messaging_service(phone_numbers=["+15005550001", number]),
        fake.add_messaging_service(phone_numbers=[number]),
    ]
    other = fake.add_messaging_service(phone_numbers=["+15005550003"], status_callback=OLD_CALLBACK)
    result = configure(cli_env(pg_url, redis_base_url, fake, base), "--phone-number", number)
    assert result.returncode == 0, result.stderr
    pools = ", ".join(holding)
    assert result.stdout.splitlines()[0] == f"{number} is in the sender pool of {pools}"
    url = f"{base}/twilio/status#{OVERRIDES}"
    assert [fake.messaging_service(sid).fields["status_callback"] for sid in holding] == [url, url]
    assert fake.messaging_service(other).fields["status_callback"] == OLD_CALLBACK
    assert len(stream_bodies(redis_client)) == 1  # one sample for the one URL


def test_a_phone_number_in_no_service_fails_with_how_twilio_sets_message_callbacks(
    pg_url, redis_base_url, fake
):
    fake.add_phone_number("+15005550002")  # the account's number, in no sender pool
    other = fake.add_messaging_service(phone_numbers=["+15005550003"], status_callback=OLD_CALLBACK)
    env = cli_env(pg_url, redis_base_url, fake, "https://hooks.example.com")
    result = configure(env, "--phone-number", "+15005550002")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "no Messaging Service has +15005550002 in its sender pool" in line
    assert "per Messaging Service or per message" in line
    assert "statuspipe send" in line
    assert fake.messaging_service(other).fields["status_callback"] == OLD_CALLBACK
    assert updates(fake) == []


@pytest.mark.parametrize(
    ("args", "exit_code", "says"),
    [
        ([], 2, "give exactly one of --messaging-service and --phone-number"),
        (
            ["--messaging-service", "MG" + "1" * 32, "--phone-number", "+15005550002"],
            2,
            "give exactly one of --messaging-service and --phone-number",
        ),
        (["--messaging-service", "MG123"], 2, "invalid --messaging-service"),
        (["--phone-number", "5550002"], 2, "invalid --phone-number"),
        (["--messaging-service", "MG" + "1" * 32], 1, "Twilio error 20404 (HTTP 404)"),
    ],
)
def test_bad_targets_are_one_line(pg_url, redis_base_url, fake, args, exit_code, says):
    result = configure(cli_env(pg_url, redis_base_url, fake, "https://hooks.example.com"), *args)
    assert result.returncode == exit_code
    [line] = result.stderr.splitlines()
    assert says in line
    assert updates(fake) == []
