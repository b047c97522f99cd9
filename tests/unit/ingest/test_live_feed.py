"""Stream tokens, change positions, and /api/changes in-process with fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from ingest.app import create_app
from ingest.live.stream_token import MAX_TTL_SECONDS, check_stream_token, issue_stream_token
from shared import changes
from shared.changes import Position
from shared.config import load_settings

ENV = {
    "TWILIO_AUTH_TOKEN": "x" * 32,
    "PUBLIC_URL": "https://hooks.example.com",
    "REDIS_URL": "redis://unused",
    "DATABASE_URL": "sqlite://",
    "API_TOKEN": "the-api-token",
}
SETTINGS = load_settings(ENV)
BEARER = {"Authorization": "Bearer the-api-token"}
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("token", "now", "ok"),
    [
        (issue_stream_token(SETTINGS, 60, now=NOW), NOW, True),
        (issue_stream_token(SETTINGS, 60, now=NOW), NOW + 59, True),
        (issue_stream_token(SETTINGS, 60, now=NOW), NOW + 60, False),  # expired
        (issue_stream_token(load_settings({**ENV, "API_TOKEN": "other"}), 60, now=NOW), NOW, False),
        (f"{int(NOW) + 10 * MAX_TTL_SECONDS}.AAAA", NOW, False),  # too far off to be ours
        ("", NOW, False),
        ("garbage", NOW, False),
        ("123.", NOW, False),
    ],
)
def test_stream_tokens(token, now, ok):
    assert check_stream_token(SETTINGS, token, now=now) is ok


def test_a_token_with_a_changed_expiry_is_refused():
    token = issue_stream_token(SETTINGS, 60, now=NOW)
    expires, _, mac = token.partition(".")
    assert not check_stream_token(SETTINGS, f"{int(expires) + 30}.{mac}", now=NOW)


def test_no_token_without_an_api_token():
    with pytest.raises(ValueError, match="API_TOKEN"):
        issue_stream_token(load_settings({**ENV, "API_TOKEN": ""}))
    assert not check_stream_token(load_settings({**ENV, "API_TOKEN": ""}), "1.a", now=0)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("5-1", Position("5-1")), ("5-1.0", Position("5-1", 0)), ("17-0.12", Position("17-0", 12))],
)
def test_positions_round_trip(raw, parsed):
    assert Position.parse(raw) == parsed
    assert str(parsed) == raw


@pytest.mark.parametrize("raw", ["", "5", "5-", "a-1", "5-1.", "5-1.x", "5-1.-1", "5-1.1.1"])
def test_bad_positions_are_refused(raw):
    with pytest.raises(ValueError, match="not a"):
        Position.parse(raw)


def publish(redis, sids):
    wire = [(sid, "sent", None, None, "+15551230000", "+15559870000", NOW) for sid in sids]
    return redis.xadd(SETTINGS.changes_stream_key, {changes.FIELD: changes.encode(wire)})


@pytest.fixture
def api():
    redis = fakeredis.FakeRedis()
    return create_app(SETTINGS, redis_client=redis).test_client(), redis


def test_changes_pages_through_entries_with_cursors_that_never_repeat(api):
    client, redis = api
    publish(redis, [f"SM{i:032x}" for i in range(3)])
    publish(redis, [f"SM{i:032x}" for i in range(3, 5)])
    seen, cursor = [], None
    for _ in range(4):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        doc = client.get("/api/changes" + query, headers=BEARER).get_json()
        seen += [c["sid"] for c in doc["changes"]]
        assert doc["next_cursor"]
        cursor = doc["next_cursor"]
    assert seen == [f"SM{i:032x}" for i in range(5)]
    publish(redis, ["SM" + "f" * 32])
    doc = client.get(f"/api/changes?cursor={cursor}", headers=BEARER).get_json()
    assert [c["sid"] for c in doc["changes"]] == ["SM" + "f" * 32]
    assert doc["changes"][0]["at"] == "2027-01-15T08:00:00.000Z"


def test_changes_on_an_empty_feed_still_gives_a_cursor(api):
    client, _ = api
    doc = client.get("/api/changes", headers=BEARER).get_json()
    assert doc == {"changes": [], "next_cursor": "0-0"}


@pytest.mark.parametrize("query", ["cursor=nope", "limit=0", "limit=1001", "limit=x"])
def test_bad_changes_queries_are_400(api, query):
    client, _ = api
    resp = client.get(f"/api/changes?{query}", headers=BEARER)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "invalid"


def test_the_stream_token_endpoint_needs_the_bearer_token_and_returns_a_working_token(api):
    client, _ = api
    assert client.post("/api/stream/token").status_code == 401
    resp = client.post("/api/stream/token", headers=BEARER, json={"ttl_seconds": 30})
    assert resp.status_code == 201
    assert check_stream_token(SETTINGS, resp.get_json()["token"])
    bad = client.post("/api/stream/token", headers=BEARER, json={"ttl_seconds": 0})
    assert bad.status_code == 422
