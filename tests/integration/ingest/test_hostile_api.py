"""Hostile input to the admin API, property-based: every GET route under /api with random path
values and query parameters (the read API's since, limit, cursor, status and sids; the report
API's date, as routes land), and POST /api/messages with random JSON. Never a 500; always JSON
with one of the documented answers. In-process Flask against PostgreSQL and the fake Twilio."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID, FakeTwilio
from ingest.app import create_app
from shared.config import load_settings
from tests.conftest import API_TOKEN, make_env
from tests.twilio_fixtures import AUTH_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The report API answers a bad parameter with 422, the message API with 400.
READ_ANSWERS = {200, 400, 404, 422}
SEND_ANSWERS = {201, 400, 409, 415, 422, 502, 503, 504}

texts = st.text(max_size=60)
odd = st.sampled_from(["", "0", "-1", "1001", "1e3", "NaN", "∞", "2026-13-45",
                       "2026-01-15T25:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00",
                       "' OR 1=1 --", "%00",
                       "\x00", "SM" + "f" * 32, "MM" + "0" * 32, "=" * 40, "A" * 5000,
                       "MjAyNi0wMS0xNVQwMDowMDowMFp8U00=", "2026-01-15", "yesterday"])  # fmt: skip
values = st.one_of(texts, odd)


@pytest.fixture
def fake():
    with FakeTwilio(auth_token=AUTH_TOKEN) as running:
        yield running


@pytest.fixture
def app(pg_url, redis_base_url, db, fake):
    env = make_env(pg_url, redis_base_url, TWILIO_ACCOUNT_SID=DEFAULT_ACCOUNT_SID,
                   TWILIO_API_BASE_URL=fake.base_url, TWILIO_TIMEOUT="1",
                   API_UNAUTHENTICATED_LIMIT="100000 per minute")  # fmt: skip
    flask_app = create_app(load_settings(env), redis_client=fakeredis.FakeRedis())
    client = flask_app.test_client()
    # Something to read: two sent messages.
    for to in ("+15005550006", "+15005550007"):
        doc = {"to": to, "from": "+15005550001", "body": "seed"}
        assert client.post("/api/messages", json=doc, headers=AUTH).status_code == 201
    return flask_app


# Server-sent event streams never end on their own; they have tests of their own.
STREAMS = {"/api/stream"}


def get_routes(app) -> list[str]:
    return sorted(r.rule for r in app.url_map.iter_rules()
                  if r.rule.startswith("/api/") and "GET" in r.methods
                  and r.rule not in STREAMS)  # fmt: skip


def assert_json_answer(resp, allowed):
    assert resp.status_code in allowed, (resp.status_code, resp.data[:300])
    doc = json.loads(resp.data)
    if resp.status_code >= 400:
        assert set(doc["error"]) >= {"code", "message"}


@FUZZ
@given(data=st.data())
def test_every_read_route_answers_random_parameters_without_a_500(app, data):
    client = app.test_client()
    routes = get_routes(app)
    assert "/api/messages" in routes
    rule = data.draw(st.sampled_from(routes))
    path = re.sub(r"<[^>]+>", lambda _: quote(data.draw(values), safe=""), rule)
    names = st.sampled_from(["since", "limit", "cursor", "status", "date", "until", "sid", "x"])
    params = data.draw(st.lists(st.tuples(names, values), max_size=5))
    query = urlencode(params, errors="surrogatepass") if params else ""
    try:
        resp = client.get(path + ("?" + query if query else ""), headers=AUTH)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be put in a URL
    assert resp.status_code != 500
    if resp.status_code != 405:
        assert_json_answer(resp, READ_ANSWERS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts | odd,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
send_docs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "to": st.one_of(values, json_values,
                            st.sampled_from(["+15005550006", "whatsapp:+15005550006", "+1",
                                             "+0123", "+123456789012345678"])),
            "from": st.one_of(values, st.just("+15005550001"), json_values),
            "messaging_service_sid": st.one_of(values, st.just("MG" + "a" * 32), json_values),
            "body": st.one_of(values, st.just("x" * 1601), json_values),
            "media_url": st.one_of(values, st.lists(values, max_size=12), json_values),
            "force": json_values,
        },
    ),
)  # fmt: skip


@FUZZ
@given(doc=send_docs, raw=st.one_of(st.none(), st.binary(max_size=200)),
       content_type=st.sampled_from(["application/json", "text/plain", "",
                                     "application/json; charset=latin-1"]))  # fmt: skip
def test_send_api_answers_random_documents_without_a_500(app, fake, doc, raw, content_type):
    client = app.test_client()
    if raw is None:
        try:
            body = json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")
        except (ValueError, TypeError):
            return
    else:
        body = raw
    resp = client.post("/api/messages", data=body, headers={**AUTH, "Content-Type": content_type})
    assert_json_answer(resp, SEND_ANSWERS)
