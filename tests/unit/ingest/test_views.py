"""The ingress in-process, with fakeredis: every answer the status route can give."""

import fakeredis
import pytest

from tests.twilio_fixtures import (
    AUTH_TOKEN,
    SECONDARY_TOKEN,
    callback_fields,
    new_sid,
    signed_get_url,
    signed_post,
)
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_client


@pytest.fixture
def client():
    return make_client()


def post(client, path, fields, token=AUTH_TOKEN, **header_overrides):
    body, headers = signed_post(PUBLIC + path, fields, token)
    headers.update(header_overrides)
    return client.post(path, data=body, headers=headers)


def test_signed_callback_is_enqueued_raw_and_answered_200_empty(client):
    c, redis = client
    fields = callback_fields(new_sid(), "delivered", RawDlrDoneDate="2601151432")
    resp = post(c, "/twilio/status", fields, **{"I-Twilio-Idempotency-Token": "tok-1"})
    assert resp.status_code == 200
    assert resp.data == b""
    ((_, entry),) = redis.xrange(STREAM)
    assert b"MessageStatus=delivered" in entry[b"b"]
    assert entry[b"t"] == b"tok-1"
    assert float(entry[b"r"]) > 0


def test_own_query_identifiers_are_covered_by_the_signature(client):
    c, redis = client
    fields = callback_fields(new_sid(), "sent")
    assert post(c, "/twilio/status?tenant=42&b=1", fields).status_code == 200
    ((_, entry),) = redis.xrange(STREAM)
    assert entry[b"q"] == b"tenant=42&b=1"
    # The same signature is not valid for another query string.
    body, headers = signed_post(PUBLIC + "/twilio/status?tenant=42&b=1", fields)
    assert c.post("/twilio/status?tenant=43&b=1", data=body, headers=headers).status_code == 403


def test_secondary_token_is_accepted():
    c, _ = make_client(TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY_TOKEN)
    fields = callback_fields(new_sid(), "sent")
    assert post(c, "/twilio/status", fields, token=SECONDARY_TOKEN).status_code == 200


def test_get_callbacks_are_accepted(client):
    c, redis = client
    url, sig = signed_get_url(PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"))
    resp = c.get(url[len(PUBLIC) :], headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200
    ((_, entry),) = redis.xrange(STREAM)
    assert entry[b"m"] == b"GET"


def test_unknown_status_is_not_an_error(client):
    c, redis = client
    assert post(c, "/twilio/status", callback_fields(new_sid(), "teleported")).status_code == 200
    assert redis.xlen(STREAM) == 1


@pytest.mark.parametrize(
    ("signature", "token"),
    [(None, AUTH_TOKEN), ("", AUTH_TOKEN), ("bm9wZQ==", AUTH_TOKEN), ("ünïcödé", AUTH_TOKEN),
     (None, "some-other-token")],
)  # fmt: skip
def test_bad_signature_is_403_and_nothing_is_enqueued(client, signature, token):
    c, redis = client
    body, headers = signed_post(
        PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"), token
    )
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    elif token == AUTH_TOKEN:
        del headers["X-Twilio-Signature"]
    resp = c.post("/twilio/status", data=body, headers=headers)
    assert resp.status_code == 403
    assert b"X-Twilio-Signature" in resp.data
    assert redis.xlen(STREAM) == 0


def test_tampered_body_is_403(client):
    c, redis = client
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"))
    resp = c.post("/twilio/status", data=body.replace(b"sent", b"read"), headers=headers)
    assert resp.status_code == 403
    assert redis.xlen(STREAM) == 0


def test_log_only_mode_accepts_bad_signatures():
    c, redis = make_client(SIGNATURE_MODE="log-only")
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"))
    headers["X-Twilio-Signature"] = "wrong"
    assert c.post("/twilio/status", data=body, headers=headers).status_code == 200
    assert redis.xlen(STREAM) == 1


def test_off_mode_skips_signatures():
    c, redis = make_client(SIGNATURE_MODE="off", TWILIO_AUTH_TOKEN="", PUBLIC_URL="")
    body, headers = signed_post("http://x/twilio/status", callback_fields(new_sid(), "sent"))
    del headers["X-Twilio-Signature"]
    assert c.post("/twilio/status", data=body, headers=headers).status_code == 200
    assert redis.xlen(STREAM) == 1


def test_body_over_64_kib_is_413(client):
    c, redis = client
    fields = callback_fields(new_sid(), "sent", Padding="x" * 70_000)
    resp = post(c, "/twilio/status", fields)
    assert resp.status_code == 413
    assert redis.xlen(STREAM) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None]
)
def test_other_content_types_are_415(client, content_type):
    c, redis = client
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"))
    if content_type is None:
        del headers["Content-Type"]
    else:
        headers["Content-Type"] = content_type
    resp = c.post("/twilio/status", data=body, headers=headers)
    assert resp.status_code == 415
    assert redis.xlen(STREAM) == 0


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f.pop("MessageSid"), b"MessageSid is missing"),
        (lambda f: f.pop("MessageStatus"), b"MessageStatus is missing"),
        (lambda f: f.update(MessageSid="SM1234"), b"MessageSid must be"),
        (lambda f: f.update(MessageSid="CA" + "0" * 32), b"MessageSid must be"),
        (lambda f: f.update(MessageSid="SM" + "z" * 32), b"MessageSid must be"),
        (lambda f: f.update(MessageSid="SM" + "0" * 32 + "\n"), b"MessageSid must be"),
        (lambda f: f.update(MessageSid=""), b"MessageSid is missing"),
    ],
)
def test_missing_or_bad_fields_are_400_with_a_reason(client, mutate, reason):
    c, redis = client
    fields = callback_fields(new_sid(), "sent")
    mutate(fields)
    resp = post(c, "/twilio/status", fields)
    assert resp.status_code == 400
    assert reason in resp.data
    assert redis.xlen(STREAM) == 0


def test_non_utf8_body_is_400(client):
    c, redis = client
    _, headers = signed_post(PUBLIC + "/twilio/status", {})
    resp = c.post("/twilio/status", data=b"MessageSid=%FF%FE", headers=headers)
    assert resp.status_code in (400, 403)
    assert redis.xlen(STREAM) == 0


def test_backlog_over_the_limit_is_503_with_retry_after():
    c, redis = make_client(INGEST_MAX_BACKLOG="2", INGEST_RETRY_AFTER="7")
    codes = [post(c, "/twilio/status", callback_fields(new_sid(), "sent")).status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [200, 200, 503]
    resp = post(c, "/twilio/status", callback_fields(new_sid(), "sent"))
    assert resp.headers["Retry-After"] == "7"
    assert redis.xlen(STREAM) == 2


def test_redis_down_is_503_never_200():
    server = fakeredis.FakeServer()
    c, _ = make_client(server=server)
    server.connected = False
    resp = post(c, "/twilio/status", callback_fields(new_sid(), "sent"))
    assert resp.status_code == 503
    assert "Retry-After" in resp.headers


def test_probes():
    server = fakeredis.FakeServer()
    c, _ = make_client(server=server)
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 200
    server.connected = False
    assert c.get("/readyz").status_code == 503
    assert c.get("/healthz").status_code == 200


def test_the_app_answers_exactly_these_routes(client):
    c, _ = client
    app = c.application
    routes = [(rule.rule, frozenset(rule.methods or ())) for rule in app.url_map.iter_rules()]
    # The status route is a WSGI fast path in front of Flask, so it is not in the url_map.
    fast_path = app.wsgi_app
    routes.append((fast_path.PATH, frozenset(fast_path.METHODS)))
    flask_get = frozenset({"GET", "HEAD", "OPTIONS"})
    assert sorted(routes) == sorted(
        [
            ("/twilio/status", frozenset({"GET", "HEAD", "POST"})),
            ("/healthz", flask_get),
            ("/readyz", flask_get),
            ("/api/messages", flask_get),
            ("/api/messages", frozenset({"OPTIONS", "POST"})),
            ("/api/messages/<sid>", flask_get),
            ("/api/contacts/<path:number>", flask_get),
            ("/api/stream", flask_get),
            ("/api/stream/token", frozenset({"OPTIONS", "POST"})),
            ("/api/changes", flask_get),
            ("/api/reports/daily", flask_get),
            ("/metrics", flask_get),
            ("/dashboard", flask_get),
            ("/dashboard/login", frozenset({"OPTIONS", "POST"})),
            ("/dashboard/logout", frozenset({"OPTIONS", "POST"})),
            ("/dashboard/data", flask_get),
            ("/dashboard/stream-token", flask_get),
            ("/dashboard/static/<path:filename>", flask_get),
        ]
    )


def test_unknown_route_and_method_are_plain_4xx(client):
    c, _ = client
    assert c.get("/nope").status_code == 404
    resp = c.put("/twilio/status")
    assert resp.status_code == 405
    assert resp.mimetype == "text/plain"


def test_other_methods_are_405_with_allow(client):
    c, redis = client
    resp = c.put("/twilio/status", data=b"x")
    assert resp.status_code == 405
    assert "POST" in resp.headers["Allow"]
    assert redis.xlen(STREAM) == 0


def test_an_unexpected_error_is_a_logged_500_not_a_crash(client, monkeypatch, caplog):
    c, _ = client

    def boom(**_):
        raise RuntimeError("bug")

    monkeypatch.setattr(c.application.extensions["statuspipe"].enqueuer, "enqueue", boom)
    resp = post(c, "/twilio/status", callback_fields(new_sid(), "sent"))
    assert resp.status_code == 500
    assert resp.data == b"internal error"
    assert "unexpected error" in caplog.text


def test_a_junk_content_length_is_refused(client):
    c, redis = client
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(new_sid(), "sent"))
    resp = c.post(
        "/twilio/status",
        data=body,
        headers=headers,
        environ_overrides={"CONTENT_LENGTH": "lots"},
    )
    assert resp.status_code in (400, 413)
    assert redis.xlen(STREAM) == 0


def test_repeated_fields_are_signed_as_twilio_signs_them(client):
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    c, redis = client
    pairs = [*callback_fields(new_sid(), "sent").items(), ("Tag", "b"), ("Tag", "a")]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC + "/twilio/status", MultiDict(pairs)
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    resp = c.post("/twilio/status", data=urlencode(pairs).encode(), headers=headers)
    assert resp.status_code == 200
    assert redis.xlen(STREAM) == 1
    # Signed without the repeat, the same body must not pass.
    wrong = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/status", dict(pairs))
    resp = c.post(
        "/twilio/status",
        data=urlencode(pairs).encode(),
        headers={**headers, "X-Twilio-Signature": wrong},
    )
    assert resp.status_code == 403
