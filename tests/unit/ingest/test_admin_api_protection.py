"""The admin API (/api/*): bearer token on every route, CORS closed unless configured, and a
per-client limit on unauthenticated requests (flask-limiter on the ingress's Redis, fakeredis
here)."""

import hmac
import re

import pytest

import ingest.api.blueprint as blueprint
from tests.twilio_fixtures import AUTH_TOKEN, callback_fields, new_sid, signed_post
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_app

TOKEN = "api-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer ünïcödé"},
]


def api_routes(app):
    """Every (method, concrete path) the app routes under /api, placeholders filled in."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


@pytest.mark.parametrize("headers", WRONG)
def test_every_api_route_refuses_a_missing_or_wrong_token(headers):
    app, _ = make_app(API_UNAUTHENTICATED_LIMIT="1000 per minute")
    client = app.test_client()
    routes = list(api_routes(app))
    assert ("GET", "/api/messages") in routes  # the walk found the routes
    for method, path in routes:
        resp = client.open(path, method=method, headers=headers, json={})
        assert resp.status_code == 401, (method, path)
        assert resp.json["error"]["code"] == "unauthorized"


def test_the_token_is_compared_in_constant_time(monkeypatch):
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(blueprint.hmac, "compare_digest", spy)
    app, _ = make_app()
    assert app.test_client().get("/api/messages/SM1", headers=AUTH).status_code == 400
    assert calls


def test_cors_is_closed_by_default():
    app, _ = make_app()
    client = app.test_client()
    origin = {"Origin": "https://evil.example"}
    resp = client.get("/api/messages/SM1", headers={**AUTH, **origin})
    assert "Access-Control-Allow-Origin" not in resp.headers
    preflight = client.options(
        "/api/messages",
        headers={**origin, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_allows_exactly_the_configured_origins():
    app, _ = make_app(CORS_ORIGINS="https://ops.example.com, https://admin.example.com/")
    client = app.test_client()
    for origin in ("https://ops.example.com", "https://admin.example.com"):
        preflight = client.options(
            "/api/messages",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"},
        )  # fmt: skip
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        resp = client.get("/api/messages/SM1", headers={**AUTH, "Origin": origin})
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in resp.headers["Vary"]
    other = client.get("/api/messages/SM1", headers={**AUTH, "Origin": "https://ops.example.co"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = client.options(
        "/api/messages",
        headers={"Origin": "https://ops.example.co", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status_code == 403
    # Without a token the answer is still a 401, readable by the allowed origin.
    resp = client.get("/api/messages", headers={"Origin": "https://ops.example.com"})
    assert resp.status_code == 401


def test_unauthenticated_requests_are_limited_per_client_and_the_token_is_exempt():
    app, redis = make_app(API_UNAUTHENTICATED_LIMIT="3 per minute")
    client = app.test_client()
    a = {"REMOTE_ADDR": "198.51.100.7"}
    b = {"REMOTE_ADDR": "198.51.100.8"}
    codes = [client.get("/api/messages", headers={"Authorization": "Bearer guess"},
                        environ_base=a).status_code for _ in range(5)]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429]
    refused = client.get("/api/messages", environ_base=a)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "too_many_requests"
    assert "Retry-After" in refused.headers
    # Another client is not affected, and the operator with the token is never limited.
    assert client.get("/api/messages", environ_base=b).status_code == 401
    for _ in range(5):
        assert client.get("/api/messages/SM1", headers=AUTH, environ_base=a).status_code == 400
    # The counters are in Redis, under statuspipe's prefix.
    assert any(b"statuspipe:api-limit" in k for k in redis.scan_iter())


def test_the_callback_path_is_not_limited():
    app, redis = make_app(API_UNAUTHENTICATED_LIMIT="1 per minute")
    client = app.test_client()
    for _ in range(3):
        assert client.post("/twilio/status", data=b"x=1").status_code == 415
    for _ in range(3):
        body, headers = signed_post(PUBLIC + "/twilio/status",
                                    callback_fields(new_sid(), "sent"), AUTH_TOKEN)  # fmt: skip
        assert client.post("/twilio/status", data=body, headers=headers).status_code == 200
    assert redis.xlen(STREAM) == 3
    assert not [k for k in redis.scan_iter() if b"api-limit" in k]
