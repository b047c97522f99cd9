"""/api/stream and /api/changes against a real gunicorn (the Procfile's web command) and real
celery worker processes: events after each commit, resume with Last-Event-ID, auth, 200 open
streams beside callbacks, and a change feed that neither misses nor repeats under concurrent
writes."""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import select

from devtools.sse_client import SseStream
from ingest.live.stream_token import issue_stream_token
from shared import stream
from shared.config import load_settings
from shared.models import MessageEvent
from tests.conftest import API_TOKEN, make_env, start_web, start_worker
from tests.twilio_fixtures import callback_fields, new_sid, signed_post

PUBLIC = "https://hooks.example.com"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
WAIT = 20.0  # generous: the machine may be busy; nothing here is a timing assertion


def post_callback(base: str, sid: str, status: str, **extra: str) -> int:
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(sid, status, **extra))
    resp = requests.post(base + "/twilio/status", data=body, headers=headers, timeout=30)
    return resp.status_code


def stream_token(base: str) -> str:
    resp = requests.post(base + "/api/stream/token", headers=BEARER, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()["token"]


def events_until(sse: SseStream, count: int, timeout: float = WAIT) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            got.append(sse.next(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"{len(got)} of {count} events arrived") from None
    return got


@pytest.fixture
def live(spawn, pg_url, redis_base_url, db, redis_client):
    env = make_env(pg_url, redis_base_url, BATCH_LINGER_MS="50")
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    return base, env


def test_a_stored_callback_reaches_an_open_stream_with_its_fields(live):
    base, _ = live
    sse = SseStream(f"{base}/api/stream?token={stream_token(base)}")
    assert sse.status == 200
    sid = new_sid()
    assert post_callback(base, sid, "undelivered", ErrorCode="30003") == 200
    (event,) = events_until(sse, 1)
    doc = event.json()
    assert doc["sid"] == sid
    assert doc["status"] == "undelivered"
    assert doc["error_code"] == 30003
    assert doc["final"] is True
    assert doc["to"] == callback_fields(sid, "sent")["To"]
    assert doc["from"] == callback_fields(sid, "sent")["From"]
    assert doc["at"].endswith("Z")
    assert event.id
    sse.close()


def test_resume_with_last_event_id_gets_exactly_the_missed_events(live):
    base, _ = live
    sse = SseStream(f"{base}/api/stream", headers=BEARER)
    first = [new_sid() for _ in range(3)]
    for sid in first:
        assert post_callback(base, sid, "sent") == 200
    seen = events_until(sse, 3)
    assert sorted(e.json()["sid"] for e in seen) == sorted(first)
    sse.close()

    missed = [new_sid() for _ in range(4)]
    for sid in missed:
        assert post_callback(base, sid, "delivered") == 200
    # Stored (and so published) before the stream comes back.
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        page = requests.get(base + "/api/changes?limit=1000", headers=BEARER, timeout=10).json()
        if {c["sid"] for c in page["changes"]} >= set(missed):
            break
        time.sleep(0.2)
    resumed = SseStream(f"{base}/api/stream", headers={**BEARER, "Last-Event-ID": seen[-1].id})
    marker = new_sid()
    assert post_callback(base, marker, "sent") == 200
    got = events_until(resumed, 5)
    assert sorted(e.json()["sid"] for e in got[:4]) == sorted(missed)
    assert got[4].json()["sid"] == marker  # and nothing twice, nothing before the gap
    resumed.close()


def test_filters_pass_only_matching_changes(live):
    base, _ = live
    wanted = new_sid()
    sse = SseStream(f"{base}/api/stream?sid={wanted}&status=delivered", headers=BEARER)
    assert post_callback(base, new_sid(), "delivered") == 200
    assert post_callback(base, wanted, "sent") == 200
    assert post_callback(base, wanted, "delivered") == 200
    (event,) = events_until(sse, 1)
    assert (event.json()["sid"], event.json()["status"]) == (wanted, "delivered")
    sse.close()


def test_stream_auth_is_refused_without_a_valid_token(live):
    base, env = live
    settings = load_settings(env)
    forged = issue_stream_token(load_settings({**env, "API_TOKEN": "not-the-token"}))
    expired = issue_stream_token(settings, ttl_seconds=1, now=time.time() - 10)
    for url, headers in [
        (f"{base}/api/stream", {}),
        (f"{base}/api/stream", {"Authorization": "Bearer wrong"}),
        (f"{base}/api/stream?token={forged}", {}),
        (f"{base}/api/stream?token={expired}", {}),
        (f"{base}/api/stream?token=garbage", {}),
    ]:
        sse = SseStream(url, headers=headers)
        assert sse.status == 401, url
        assert b'"unauthorized"' in sse.body
    assert requests.post(base + "/api/stream/token", timeout=10).status_code == 401
    assert requests.get(base + "/api/changes", timeout=10).status_code == 401
    # The token itself works, once.
    sse = SseStream(f"{base}/api/stream?token={issue_stream_token(settings)}")
    assert sse.status == 200
    sse.close()


def test_an_open_stream_holds_no_worker_and_a_closed_one_frees_its_place(
    spawn, pg_url, redis_base_url, db, redis_client
):
    # One sync worker process, room for one stream: the stream must not hold the worker.
    env = make_env(pg_url, redis_base_url, BATCH_LINGER_MS="50", WEB_CONCURRENCY="1",
                   STREAM_MAX_PER_PROCESS="1")  # fmt: skip
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    with requests.get(base + "/api/stream", headers=BEARER, stream=True, timeout=WAIT) as resp:
        assert resp.status_code == 200
        assert resp.headers["Transfer-Encoding"] == "chunked"  # HTTP/1.1, as browsers ask
        with requests.get(base + "/api/stream", headers=BEARER, stream=True, timeout=WAIT) as full:
            assert full.status_code == 503  # (a 200 would be a second stream: not read)
            assert full.json()["error"]["code"] == "too_many_streams"
        sid = new_sid()
        assert post_callback(base, sid, "delivered") == 200
        for line in resp.iter_lines():  # requests undoes the chunking
            if line.startswith(b"data: ") and sid.encode() in line:
                break
    deadline = time.monotonic() + WAIT
    while True:
        with requests.get(base + "/api/stream", headers=BEARER, stream=True, timeout=WAIT) as again:
            if again.status_code == 200:
                break
        assert time.monotonic() < deadline, "the closed stream's place never came back"
        time.sleep(0.1)


def test_200_open_streams_do_not_keep_callbacks_from_their_200(
    spawn, pg_url, redis_base_url, db, redis_client
):
    env = make_env(pg_url, redis_base_url, STREAM_MAX_PER_PROCESS="200")
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    streams = [SseStream(f"{base}/api/stream", headers=BEARER, parse=False) for _ in range(200)]
    assert [s.status for s in streams] == [200] * 200
    sids = [new_sid() for _ in range(100)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda sid: post_callback(base, sid, "sent"), sids))
    assert answers == [200] * 100
    # ... and every open stream got the changes (the last one published is in every body).
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and min(s.bytes_read for s in streams) < 100 * 100:
        time.sleep(0.2)
    assert min(s.bytes_read for s in streams) >= 100 * 100  # 100 events of 100+ bytes each
    for s in streams:
        s.close()


def test_change_feed_neither_misses_nor_repeats_under_concurrent_writers(
    spawn, pg_url, redis_base_url, db, redis_client
):
    # Small batches, no linger: the two workers' commits and publishes interleave constantly.
    env = make_env(pg_url, redis_base_url, BATCH_SIZE="25", BATCH_LINGER_MS="0")
    _, base = start_web(spawn, env)
    start_worker(spawn, env)
    start_worker(spawn, env)
    settings = load_settings(env)
    enq = stream.Enqueuer(redis_client, settings.stream_key, settings.max_backlog)
    expected = set()
    polled: list[dict] = []
    cursor = None

    def poll() -> None:
        nonlocal cursor
        params = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        page = requests.get(base + "/api/changes", params=params, headers=BEARER, timeout=10)
        assert page.status_code == 200, page.text
        doc = page.json()
        assert doc["next_cursor"]
        polled.extend(doc["changes"])
        cursor = doc["next_cursor"]

    for i in range(1500):
        sid = new_sid()
        for status in ("sent", "delivered"):
            enq.enqueue(body=urlencode(callback_fields(sid, status)).encode(), query=b"",
                        method="POST", token="", received=time.time())  # fmt: skip
            expected.add((sid, status))
        if i % 10 == 0:
            poll()  # the client polls while the workers commit
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(polled) < len(expected):
        poll()
    poll()  # one more, empty, page: nothing repeats at the end either
    with db.connect() as conn:
        stored = set(conn.execute(select(MessageEvent.message_sid, MessageEvent.status)))
    keys = [(c["sid"], c["status"]) for c in polled]
    assert len(keys) == len(set(keys)), "a change was repeated"
    assert set(keys) == stored == expected, "a change was missed"
    ids = [c["id"] for c in polled]
    assert len(set(ids)) == len(ids)
