"""`statuspipe send`: the API's send from a terminal, against a fake Twilio reached over HTTP by
the official client (TWILIO_API_BASE_URL), with statuspipe's record in the real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID
from shared.models import Contact, OutboundMessage
from tests.conftest import make_env
from tests.integration.cli.runner import statuspipe

PUBLIC = "https://hooks.example.com"
SENDER = "+15005550006"
TO = "+15005550010"
OVERRIDES = "rc=3&rp=ct,rt,5xx&ct=2000&rt=3000"


@pytest.fixture
def env(pg_url, redis_base_url, fake, db):
    return make_env(
        pg_url,
        redis_base_url,
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_API_BASE_URL=fake.base_url,
        CALLBACK_CONNECTION_OVERRIDES=OVERRIDES,
    )


def send(env, *args):
    return statuspipe(env, "send", "--to", TO, "--body", "Your code is 123456", *args)


def outbound_rows(db):
    with Session(db) as session:
        return session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()


def test_send_prints_the_message_as_the_api_shows_it(env, fake, db):
    result = send(env, "--from", SENDER)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    [created] = fake.created
    [row] = outbound_rows(db)
    assert (doc["sid"], doc["id"], doc["status"]) == (created.sid, row.id, "queued")
    assert (doc["to"], doc["from"], doc["retry_of"], doc["retries"]) == (TO, SENDER, None, [])
    form = created.form
    assert (form["To"], form["From"], form["Body"]) == ([TO], [SENDER], ["Your code is 123456"])
    assert form["StatusCallback"] == [f"{PUBLIC}/twilio/status?statuspipe_id={row.id}#{OVERRIDES}"]
    assert (row.sid, row.send_state) == (created.sid, "created")


def test_send_through_a_messaging_service_with_media(env, fake):
    service = fake.add_messaging_service(phone_numbers=[SENDER])
    media = ["https://example.com/a.png", "https://example.com/b.png"]
    result = statuspipe(
        env, "send", "--to", TO, "--messaging-service", service,
        "--media-url", media[0], "--media-url", media[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [created] = fake.created
    assert created.form["MessagingServiceSid"] == [service]
    assert created.form["MediaUrl"] == media
    assert "Body" not in created.form
    assert json.loads(result.stdout)["messaging_service_sid"] == service


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--to", "555-0100", "--body", "hi", "--from", SENDER], "--to"),
        (["--to", TO, "--from", SENDER], "--body"),
        (["--to", TO, "--body", "hi"], "--from / --messaging-service"),
        (
            ["--to", TO, "--body", "hi", "--from", SENDER, "--messaging-service", "MG1"],
            "--from / --messaging-service",
        ),
        (["--to", TO, "--body", "hi", "--messaging-service", "MG1"], "--messaging-service"),
        (["--to", TO, "--from", SENDER, "--media-url", "ftp://x/a.png"], "--media-url"),
    ],
)
def test_invalid_input_names_the_option_and_sends_nothing(env, fake, db, args, option):
    result = statuspipe(env, "send", *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: invalid {option}: ")
    if option == "--to":
        assert "to must be an E.164 number" in line
    assert result.stdout == ""
    assert (fake.requests, outbound_rows(db)) == ([], [])


def test_a_twilio_rejection_is_one_line_with_its_code(env, fake, db):
    fake.reject_to(TO, 21610, message="Attempt to send to unsubscribed recipient")
    result = send(env, "--from", SENDER)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: not sent: Twilio error 21610 (HTTP 400): ")
    assert "Attempt to send to unsubscribed recipient" in line
    [row] = outbound_rows(db)
    assert f"statuspipe id {row.id}" in line
    assert (row.send_state, row.error_code, row.sid) == ("rejected", 21610, None)


def test_an_opted_out_contact_is_refused_unless_forced(env, fake, db):
    with Session(db) as session, session.begin():
        session.add(
            Contact(
                number=TO,
                state="opted_out",
                reason_code=21610,
                source_sid="SM" + "a" * 32,
                updated_at=datetime.now(UTC),
            )
        )
    refused = send(env, "--from", SENDER)
    assert refused.returncode == 3
    [line] = refused.stderr.splitlines()
    assert f"{TO} is marked opted_out (Twilio error 21610)" in line
    assert "--force" in line
    assert (fake.created, outbound_rows(db)) == ([], [])
    forced = send(env, "--from", SENDER, "--force")
    assert forced.returncode == 0, forced.stderr
    [created] = fake.created
    assert json.loads(forced.stdout)["sid"] == created.sid


def test_a_missing_twilio_account_is_one_line(env, fake):
    result = send({**env, "TWILIO_ACCOUNT_SID": ""}, "--from", SENDER)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: TWILIO_ACCOUNT_SID is required but not set")
    assert fake.requests == []
