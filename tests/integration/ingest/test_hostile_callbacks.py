"""Signed callbacks with hostile content through the real pipeline (gunicorn, a celery worker,
Redis, PostgreSQL): each is stored exactly as sent or dead-lettered with a reason, and the
batch around it is stored too. Plus what only a real server shows: raw UTF-8 bytes in the
request line, shared-key and Basic-auth callbacks through gunicorn."""

from __future__ import annotations

import socket
import time
from base64 import b64encode
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from shared.models import DeadLetter, MessageEvent
from tests.conftest import make_env, start_web, start_worker
from tests.integration.test_pipeline import PUBLIC, http
from tests.twilio_fixtures import AUTH_TOKEN, FORM, callback_fields, new_sid
from tests.waiting import wait_for

SHARED_ID, SHARED_SECRET = "rotation_b", "shared-secret-for-integration"


@pytest.fixture
def env(pg_url, redis_client, redis_base_url, db):
    return make_env(
        pg_url, redis_base_url, TWILIO_SHARED_KEYS=f"{SHARED_ID}={SHARED_SECRET}",
        BATCH_LINGER_MS="200",
    )  # fmt: skip


@pytest.fixture
def pipeline(spawn, env):
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    return base


def post_raw(base, path: str, body: bytes, headers: dict[str, str]) -> int:
    status, _, _ = http("POST", base + path, body, {"Content-Type": FORM, **headers})
    return status


def signed_body(pairs: list[tuple[str, str]], url: str = PUBLIC + "/twilio/status"):
    body = urlencode(pairs).encode()
    params: dict[str, list[str]] = {}
    for k, v in pairs:
        params.setdefault(k, []).append(v)

    class Multi(dict):
        def getall(self, key):
            return self[key]

    return body, RequestValidator(AUTH_TOKEN).compute_signature(url, Multi(params))


def stored_raw(db, sid):
    with Session(db) as session:
        return [e.raw for e in session.scalars(
            select(MessageEvent).where(MessageEvent.message_sid == sid))]  # fmt: skip


def dead_letter_reasons(db):
    with Session(db) as session:
        return {d.entry.get("b", "") if isinstance(d.entry, dict) else "": d.reason
                for d in session.scalars(select(DeadLetter))}  # fmt: skip


HOSTILE = {
    "sql": [
        ("Body", "'; DROP TABLE messages; --"),
        ("ErrorMessage", "1' OR '1'='1"),
        ('x"); DELETE FROM message_events; --', "$$; TRUNCATE dead_letters; $$"),
    ],
    "bad_utf8_escapes": [("ErrorMessage", "\udcff")],  # sent as %FF, not UTF-8 once decoded
    "value_60k": [("Big", "x" * (60 * 1024))],  # under the 64 KiB body limit once encoded
    "fields_5000": [(f"F{i}", str(i)) for i in range(5000)],
    "repeated_and_empty": [("", ""), ("A", ""), ("A", "1"), ("A", "1"), ("=", "&")],
    "unicode": [("ErrorMessage", "\u2028\u202e\U0001f4a9 \ufeff")],
}


def test_hostile_signed_callbacks_are_stored_exactly_or_dead_lettered(pipeline, db):
    base = pipeline
    sent: dict[str, tuple[str, bytes]] = {}
    for name, extra in HOSTILE.items():
        sid = new_sid()
        fields = list(callback_fields(sid, "delivered").items())
        if name == "bad_utf8_escapes":
            body = (urlencode(fields) + "&ErrorMessage=%FF%FE%C3%28").encode()
            params = {**dict(fields), "ErrorMessage": "\ufffd\ufffd\ufffd("}
            signature = RequestValidator(AUTH_TOKEN).compute_signature(
                PUBLIC + "/twilio/status", params
            )
        else:
            body, signature = signed_body(fields + extra)
        assert len(body) <= 64 * 1024, name
        assert post_raw(base, "/twilio/status", body, {"X-Twilio-Signature": signature}) == 200
        sent[name] = (sid, body)
    # A NUL cannot be stored in PostgreSQL text: it must be dead-lettered with that reason,
    # and not take the rest of its batch down with it.
    nul_sid = new_sid()
    nul_fields = [*callback_fields(nul_sid, "sent").items(), ("ErrorMessage", "a\x00b")]
    nul_body, nul_sig = signed_body(nul_fields)
    assert post_raw(base, "/twilio/status", nul_body, {"X-Twilio-Signature": nul_sig}) == 200
    # A well-behaved callback sent last, in the same batch.
    good = new_sid()
    good_body, good_sig = signed_body(list(callback_fields(good, "sent").items()))
    assert post_raw(base, "/twilio/status", good_body, {"X-Twilio-Signature": good_sig}) == 200

    wait_for(lambda: stored_raw(db, good), timeout=30, what="the well-behaved callback")
    for name, (sid, body) in sent.items():
        raws = wait_for(lambda sid=sid: stored_raw(db, sid), timeout=30, what=name)
        assert raws == [body.decode()], name
    reasons = wait_for(lambda: [r for b, r in dead_letter_reasons(db).items() if nul_sid in b],
                       timeout=30, what="the NUL dead letter")  # fmt: skip
    assert "NUL" in reasons[0]
    assert stored_raw(db, nul_sid) == []


def raw_post(port: int, target: bytes, body: bytes, signature: str, timeout: float = 5.0) -> bytes:
    """The status line gunicorn answers to a request line written byte for byte (http.client
    refuses non-ASCII in one)."""
    head = (
        f"Host: 127.0.0.1\r\nContent-Type: {FORM}\r\nContent-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {signature}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"POST " + target + b" HTTP/1.1\r\n" + head + body)
        return conn.makefile("rb").readline()


def test_both_port_forms_and_raw_utf8_through_gunicorn(pipeline, db):
    port = int(pipeline.rsplit(":", 1)[1])
    fields = callback_fields(new_sid(), "sent")
    body = urlencode(fields).encode()
    path = "/twilio/status?tenant=caf%C3%A9&n=%E2%9C%93"
    for url in (PUBLIC + path, "https://hooks.example.com:443" + path):
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)
        assert raw_post(port, path.encode(), body, signature).split()[1] == b"200"
    # Raw UTF-8 bytes in the request target: gunicorn (RFC 9112) refuses them before statuspipe
    # sees the request, so nothing is stored; other WSGI servers pass them on, and the
    # signature is then checked over their UTF-8 text (tests/unit/ingest/test_signature_forms).
    raw_sid = new_sid()
    raw_fields = callback_fields(raw_sid, "sent")
    raw_path = "/twilio/status?tenant=café"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + raw_path, raw_fields)
    status = raw_post(port, raw_path.encode(), urlencode(raw_fields).encode(), signature)
    assert status.split()[1] == b"400"
    wait_for(lambda: stored_raw(db, fields["MessageSid"]), what="the callback")
    assert stored_raw(db, raw_sid) == []


def test_shared_key_callbacks_through_gunicorn(pipeline, db):
    base = pipeline
    sid = new_sid()
    fields = callback_fields(sid, "delivered")
    url = PUBLIC + "/twilio/status"
    sig = RequestValidator(SHARED_SECRET).compute_signature(url, fields, "HMAC_SHA256")
    settings = {"X-Twilio-Webhooks-Signature-Settings": f"key={SHARED_ID},algorithm=HMAC_SHA256"}
    body = urlencode(fields).encode()
    assert post_raw(base, "/twilio/status", body, {"X-Twilio-Signature": sig, **settings}) == 200
    wrong = {"X-Twilio-Webhooks-Signature-Settings": "key=retired,algorithm=HMAC_SHA256"}
    assert post_raw(base, "/twilio/status", body, {"X-Twilio-Signature": sig, **wrong}) == 403
    wait_for(lambda: stored_raw(db, sid), what="the shared-key callback")


def test_basic_auth_through_gunicorn(spawn, pg_url, redis_base_url, redis_client, db):
    env = make_env(pg_url, redis_base_url, CALLBACK_BASIC_AUTH="twilio:pa55word")
    _, base = start_web(spawn, env)
    fields = callback_fields(new_sid(), "sent")
    body = urlencode(fields).encode()
    sig = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/status", fields)
    status, _, headers = http("POST", base + "/twilio/status", body,
                              {"Content-Type": FORM, "X-Twilio-Signature": sig})  # fmt: skip
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    creds = "Basic " + b64encode(b"twilio:pa55word").decode()
    assert post_raw(base, "/twilio/status", body,
                    {"X-Twilio-Signature": sig, "Authorization": creds}) == 200  # fmt: skip


# The web worker's line for a connection it closed unheard (ingest/web_worker.py).
CLOSED_SILENT = "closed a connection that sent nothing"


@pytest.mark.parametrize(("idle_seconds", "handed_over"), [(0, False), (18, True)])
def test_connections_that_send_nothing_hold_no_web_process(
    spawn, env, db, idle_seconds, handed_over
):
    """A sync worker waits on a connection it accepted until the request arrives. Idle
    connections, more than there are processes, opened `idle_seconds` before a callback. The
    kernel holds them back at first (TCP_DEFER_ACCEPT, ingest/gunicorn_conf.py); past its
    deferral (about 15 s) it hands them over, and the web worker closes them unheard after 1 s.
    Without that close, they held the processes until gunicorn's timeout killed them (30 s)."""
    web, base = start_web(spawn, {**env, "WEB_CONCURRENCY": "2"})
    port = int(base.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        time.sleep(idle_seconds)
        body, signature = signed_body(list(callback_fields(new_sid(), "sent").items()))
        # A timeout here is the failure.
        status = raw_post(port, b"/twilio/status", body, signature, timeout=10)
        assert status.startswith(b"HTTP/1.1 200"), status
    finally:
        for sock in idle:
            sock.close()
    # Which of the two kept them off the processes: the kernel (no process ever saw them) or
    # the web worker's close.
    assert (CLOSED_SILENT in web.output()) is handed_over
