"""POST /api/messages and the JSON errors of /api, against PostgreSQL and the fake Twilio REST API
reached by the official twilio client (the Flask app in-process; Redis is not on this path)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import fakeredis
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID, FakeTwilio
from ingest.app import create_app
from shared.config import load_settings
from shared.models import Contact, OutboundMessage
from tests.conftest import API_TOKEN, make_env
from tests.twilio_fixtures import AUTH_TOKEN, new_sid

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SENDER = "+15005550001"
TO = "+15005550006"


@pytest.fixture
def fake():
    with FakeTwilio(auth_token=AUTH_TOKEN) as running:
        yield running


def app_client(pg_url, redis_base_url, **env):
    settings = load_settings(make_env(pg_url, redis_base_url, **env))
    return create_app(settings, redis_client=fakeredis.FakeRedis()).test_client()


@pytest.fixture
def client(pg_url, redis_base_url, db, fake):
    return app_client(
        pg_url,
        redis_base_url,
        TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
        TWILIO_API_BASE_URL=fake.base_url,
        TWILIO_TIMEOUT="1",
    )


def send(client, **doc):
    return client.post("/api/messages", json={"to": TO, "body": "hi", "from": SENDER, **doc},
                       headers=AUTH)  # fmt: skip


def test_a_send_is_stored_then_created_with_statuspipes_callback(client, fake, db):
    resp = send(client, media_url=["https://example.com/a.png"])
    assert resp.status_code == 201, resp.json
    doc = resp.json
    [created] = fake.created
    assert doc["sid"] == created.sid
    assert resp.headers["Location"] == f"/api/messages/{created.sid}"
    assert (doc["status"], doc["to"], doc["from"]) == ("queued", TO, SENDER)
    assert (doc["retry_of"], doc["retries"], doc["actions"], doc["events"]) == (None, [], [], [])
    assert created.status_callback == (
        f"https://hooks.example.com/twilio/status?statuspipe_id={doc['id']}"
        "#rc=3&rp=ct,rt,5xx&ct=2000&rt=3000"
    )
    assert list(created.media_urls) == ["https://example.com/a.png"]
    with Session(db) as session:
        row = session.get(OutboundMessage, doc["id"])
        assert (row.sid, row.send_state, row.attempt) == (created.sid, "created", 1)
    assert client.get(f"/api/messages/{created.sid}", headers=AUTH).json == doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"to": "15005550006"}, "to"),
        ({"body": ""}, "body"),
        ({"messaging_service_sid": "MG" + "0" * 32}, "from"),
        ({"from": None}, "from"),
        ({"colour": "red"}, "colour"),
        ({"media_url": "not a url", "body": None}, "media_url"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, fake, doc, field):
    resp = send(client, **doc)
    assert resp.status_code == 422
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["code"] == "invalid"
    assert resp.json["error"]["message"]
    assert fake.created == []


def test_a_body_that_is_not_json_is_a_400(client):
    resp = client.post("/api/messages", data="to=+1", headers=AUTH)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_json"


def test_twilio_refusing_the_message_is_a_422_with_twilios_code(client, fake, db):
    fake.reject_to(TO, 21610)
    resp = send(client)
    assert resp.status_code == 422
    error = resp.json["error"]
    assert (error["code"], error["twilio_code"], error["twilio_status"]) == (
        "twilio_error", 21610, 400)  # fmt: skip
    with Session(db) as session:
        row = session.get(OutboundMessage, error["id"])
        assert (row.send_state, row.error_code, row.sid) == ("rejected", 21610, None)


def test_twilio_down_is_a_503_with_retry_after(client, fake):
    fake.fail_next_creates(500)
    resp = send(client)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.json["error"]["twilio_code"] == 20500


def test_twilio_not_answering_is_a_504_and_the_send_is_recorded_as_unknown(client, fake, db):
    fake.hang_next_creates(2.5)
    resp = send(client)
    assert resp.status_code == 504
    assert resp.json["error"]["code"] == "twilio_timeout"
    with Session(db) as session:
        row = session.get(OutboundMessage, resp.json["error"]["id"])
        assert row.send_state == "unknown"


def test_a_contact_marked_landline_is_a_409_unless_forced(client, fake, db):
    with Session(db) as session, session.begin():
        session.add(Contact(number=TO, state="landline", reason_code=30006,
                            source_sid=new_sid(), updated_at=datetime.now(UTC)))  # fmt: skip
    resp = send(client)
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "contact_landline"
    assert resp.json["error"]["reason_code"] == 30006
    assert fake.created == []
    assert send(client, force=True).status_code == 201


def test_contacts_are_read_by_url_encoded_number(client, db):
    assert client.get(f"/api/contacts/{quote(TO)}", headers=AUTH).status_code == 404
    with Session(db) as session, session.begin():
        session.add(Contact(number=TO, state="opted_out", reason_code=21610,
                            source_sid="SM" + "a" * 32, updated_at=datetime.now(UTC)))  # fmt: skip
    doc = client.get(f"/api/contacts/{quote(TO, safe='')}", headers=AUTH).json
    assert (doc["number"], doc["state"], doc["reason_code"]) == (TO, "opted_out", 21610)


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "field"),
    [
        ("GET", "/api/messages/SM123", 400, "invalid", "sid"),
        ("GET", f"/api/messages/{'SM' + 'f' * 32}", 404, "not_found", None),
        ("GET", "/api/messages?limit=0", 400, "invalid", "limit"),
        ("GET", "/api/messages?since=yesterday", 400, "invalid", "since"),
        ("GET", "/api/messages?cursor=%%%", 400, "invalid", "cursor"),
        ("GET", "/api/nope", 404, "not_found", None),
        ("DELETE", "/api/messages", 405, "method_not_allowed", None),
    ],
)
def test_every_api_error_is_json(client, method, path, status, code, field):
    resp = client.open(path, method=method, headers=AUTH)
    assert resp.status_code == status
    assert resp.json["error"]["code"] == code
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}]
)
def test_without_the_bearer_token_every_api_route_is_a_json_401(client, fake, headers):
    for method, path in [("GET", "/api/messages"), ("POST", "/api/messages"),
                         ("GET", f"/api/contacts/{quote(TO)}")]:  # fmt: skip
        resp = client.open(path, method=method, headers=headers, json={})
        assert resp.status_code == 401
        assert resp.json["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert fake.created == []


def test_sending_without_twilio_settings_is_a_503_not_a_500(pg_url, redis_base_url, db):
    client = app_client(pg_url, redis_base_url)
    resp = send(client)
    assert resp.status_code == 503
    assert resp.json["error"]["code"] == "not_configured"
    assert "TWILIO_ACCOUNT_SID" in resp.json["error"]["message"]
    with Session(db) as session:
        assert session.scalars(select(OutboundMessage)).all() == []
