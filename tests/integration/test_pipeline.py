"""The whole pipeline as it runs in production: gunicorn + a real `celery worker` process,
real Redis and PostgreSQL, callbacks signed exactly as Twilio signs them."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from devtools.redis_server import RedisServer
from shared.models import DeadLetter, Message, MessageEvent
from tests import services
from tests.conftest import API_TOKEN, BIN, make_env, start_web, start_worker
from tests.integration.cli.runner import statuspipe
from tests.twilio_fixtures import (
    AUTH_TOKEN,
    callback_fields,
    new_sid,
    signed_get_url,
    signed_post,
)
from tests.waiting import wait_for

PUBLIC = "https://hooks.example.com"


def http(method, url, body=None, headers=None, timeout=5.0):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def send(base, fields, path="/twilio/status", token=AUTH_TOKEN, idem=None, **hdr):
    body, headers = signed_post(PUBLIC + path, fields, token, idem)
    headers.update(hdr)
    return http("POST", base + path, body, headers)


def events_of(db, sid):
    with Session(db) as session:
        rows = session.scalars(select(MessageEvent).where(MessageEvent.message_sid == sid)).all()
        return {e.status: e.duplicate_count for e in rows}


def status_of(db, sid):
    with Session(db) as session:
        m = session.get(Message, sid)
        return m and m.status


@pytest.fixture
def env(pg_url, redis_client, redis_base_url, db):
    return make_env(pg_url, redis_base_url)


@pytest.fixture
def pipeline(spawn, env):
    web, base = start_web(spawn, env)
    worker = start_worker(spawn, env)
    return base, web, worker


def test_sent_then_delivered_is_read_back_through_the_api(pipeline, db):
    base, _, _ = pipeline
    sid = new_sid()
    assert send(base, callback_fields(sid, "sent"))[0] == 200
    status, body, _ = send(base, callback_fields(sid, "delivered", RawDlrDoneDate="2601151432"))
    assert (status, body) == (200, b"")
    wait_for(lambda: status_of(db, sid) == "delivered", what="delivered")

    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    status, body, _ = http("GET", f"{base}/api/messages/{sid}", headers=auth)
    doc = json.loads(body)
    assert status == 200
    assert doc["status"] == "delivered"
    assert doc["carrier_done_at"] == "2026-01-15T14:32:00Z"
    assert [e["status"] for e in doc["events"]] == ["sent", "delivered"]
    assert doc["created_at"].endswith("Z")

    assert http("GET", f"{base}/api/messages/{sid}")[0] == 401
    assert http("GET", f"{base}/api/messages/{new_sid()}", headers=auth)[0] == 404
    status, body, _ = http("GET", f"{base}/api/messages?status=delivered&limit=10", headers=auth)
    assert sid in [m["sid"] for m in json.loads(body)["messages"]]


def test_delivered_before_sent_stays_delivered(pipeline, db):
    base, _, _ = pipeline
    sid = new_sid()
    assert send(base, callback_fields(sid, "delivered"))[0] == 200
    wait_for(lambda: status_of(db, sid) == "delivered", what="delivered")
    assert send(base, callback_fields(sid, "sent"))[0] == 200
    wait_for(lambda: "sent" in events_of(db, sid), what="late sent recorded")
    assert status_of(db, sid) == "delivered"


def test_the_same_callback_five_times_concurrently_is_one_row_with_four_duplicates(pipeline, db):
    base, _, _ = pipeline
    sid = new_sid()
    fields = callback_fields(sid, "delivered")
    token = str(uuid.uuid4())  # Twilio's retries carry the same idempotency token
    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(lambda _: send(base, fields, idem=token)[0], range(5)))
    assert codes == [200] * 5
    wait_for(lambda: events_of(db, sid).get("delivered") == 4, what="duplicate_count 4")
    time.sleep(0.5)  # nothing more may arrive
    assert events_of(db, sid) == {"delivered": 4}


def test_unknown_status_values_are_kept(pipeline, db):
    base, _, _ = pipeline
    sid = new_sid()
    assert send(base, callback_fields(sid, "partially_delivered"))[0] == 200
    assert send(base, callback_fields(sid, "sent"))[0] == 200
    wait_for(lambda: len(events_of(db, sid)) == 2, what="both events")
    assert status_of(db, sid) == "sent"


def test_get_callbacks_and_own_query_identifiers_work_through_gunicorn(pipeline, db):
    base, _, _ = pipeline
    sid = new_sid()
    url, signature = signed_get_url(
        PUBLIC + "/twilio/status?tenant=42", callback_fields(sid, "sent")
    )
    status, _, _ = http("GET", base + url[len(PUBLIC) :], headers={"X-Twilio-Signature": signature})
    assert status == 200
    wait_for(lambda: status_of(db, sid) == "sent", what="sent via GET")


def _bad_requests(base):
    """Every bad input of the issue; each carries a sid that must never reach the database."""
    cases = []

    sid = new_sid()
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(sid, "sent"))
    headers["X-Twilio-Signature"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    cases.append(("wrong signature", 403, sid, body, headers))

    sid = new_sid()
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(sid, "sent"))
    del headers["X-Twilio-Signature"]
    cases.append(("missing signature", 403, sid, body, headers))

    sid = new_sid()
    fields = callback_fields(sid, "sent", Padding="x" * 70_000)
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    cases.append(("body over 64 KiB", 413, sid, body, headers))

    sid = new_sid()
    body, headers = signed_post(PUBLIC + "/twilio/status", callback_fields(sid, "sent"))
    headers["Content-Type"] = "application/json"
    cases.append(("json content type", 415, sid, body, headers))

    sid = new_sid()
    fields = callback_fields(sid, "sent")
    del fields["MessageStatus"]
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    cases.append(("missing MessageStatus", 400, sid, body, headers))

    fields = callback_fields("SM123", "sent")
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    cases.append(("short MessageSid", 400, "SM123", body, headers))
    return cases


def test_bad_input_gets_a_clear_4xx_and_nothing_is_enqueued(pipeline, db, redis_client):
    base, web, _ = pipeline
    for what, expected, _sid, body, headers in _bad_requests(base):
        status, reply, _ = http("POST", base + "/twilio/status", body, headers)
        assert status == expected, what
        assert reply, f"{what}: the 4xx must say why"
    # A good callback sent after them is stored; by then any bad one would have been too.
    sentinel = new_sid()
    assert send(base, callback_fields(sentinel, "sent"))[0] == 200
    wait_for(lambda: status_of(db, sentinel) == "sent", what="sentinel")
    with Session(db) as session:
        assert session.scalar(text("SELECT count(*) FROM messages")) == 1
        assert session.scalars(select(DeadLetter)).all() == []
    assert "Traceback" not in web.output()


def test_worker_killed_mid_batch_loses_nothing(spawn, env, db, redis_client, pg_engine):
    """SIGKILL a worker while its batch is inside an open transaction; another takes over."""
    _, base = start_web(spawn, env)
    sids = [new_sid() for _ in range(300)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda s: send(base, callback_fields(s, "delivered"))[0], sids))
    assert codes == [200] * 300

    # Hold a lock the worker's transaction needs, so it is provably mid-batch when killed.
    def pending():
        try:
            return redis_client.xpending(env_stream(env), "statuspipe")["pending"]
        except redis.ResponseError as exc:  # the worker has not created its group yet
            if "NOGROUP" not in str(exc):
                raise
            return 0

    blocker = pg_engine.connect()
    try:
        blocker.begin()
        blocker.execute(text("LOCK TABLE callback_receipts IN ACCESS EXCLUSIVE MODE"))
        doomed = start_worker(spawn, env)
        wait_for(lambda: pending() > 0, what="the doomed worker to take a batch")
        doomed.stop(signal.SIGKILL)
    finally:
        blocker.close()  # rolls back, releasing the lock even when the test fails
    assert pending() > 0  # its batch is still held, unacknowledged

    start_worker(spawn, env)
    wait_for(lambda: pending() == 0 and redis_client.xlen(env_stream(env)) == 0,
             timeout=30, what="takeover")  # fmt: skip
    with Session(db) as session:
        rows = session.execute(select(MessageEvent.message_sid, MessageEvent.duplicate_count))
        stored = dict(rows.all())
    assert sorted(stored) == sorted(sids)
    assert set(stored.values()) == {0}
    assert_verified(env, acknowledged=300)


def assert_verified(env, acknowledged):
    """`statuspipe verify` agrees: every acknowledged callback is stored (or dead-lettered)."""
    result = statuspipe(env, "verify", "--since", "15m")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"acknowledged {acknowledged:,}: stored {acknowledged:,}" in result.stdout


def test_verify_names_a_callback_deleted_behind_its_back(pipeline, env, db):
    base, _, _ = pipeline
    sids = [new_sid() for _ in range(12)]
    for sid in sids:
        assert send(base, callback_fields(sid, "delivered"))[0] == 200
    wait_for(lambda: all(events_of(db, sid) for sid in sids), what="storing")
    assert_verified(env, acknowledged=12)
    with Session(db) as session, session.begin():
        session.execute(text("DELETE FROM message_events WHERE message_sid = :sid"),
                        {"sid": sids[5]})  # fmt: skip
    result = statuspipe(env, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"MISSING 1 x {sids[5]} delivered" in result.stdout
    assert "no audit row" in result.stdout
    assert "NOT OK" in result.stdout


def test_redis_restarted_with_aof_keeps_every_acknowledged_callback(spawn, pg_url, db, tmp_path):
    """Callbacks stored before the restart, queued across it, and sent after it: all stored,
    and verify agrees (the ledger lives in the same AOF as the stream)."""
    data = tmp_path / "redis-data"
    own_redis = RedisServer(appendonly=True, data_dir=data)
    restarted = None
    try:
        env = make_env(pg_url, own_redis.url)
        _, base = start_web(spawn, env)
        worker = start_worker(spawn, env)
        sids = [new_sid() for _ in range(45)]
        for sid in sids[:15]:
            assert send(base, callback_fields(sid, "delivered"))[0] == 200
        wait_for(lambda: all(events_of(db, sid) for sid in sids[:15]), what="the first 15")
        worker.stop()
        for sid in sids[15:30]:  # queued in Redis: no worker
            assert send(base, callback_fields(sid, "delivered"))[0] == 200
        redis.Redis.from_url(own_redis.url).shutdown()  # a clean restart: the AOF is synced
        own_redis.proc.wait(timeout=30)
        restarted = RedisServer(appendonly=True, port=own_redis.port, data_dir=data)
        assert redis.Redis.from_url(restarted.url).xlen(env_stream(env)) == 15
        start_worker(spawn, env)
        for sid in sids[30:]:
            assert send(base, callback_fields(sid, "delivered"))[0] == 200
        wait_for(lambda: all(events_of(db, sid) for sid in sids), timeout=30, what="all 45")
        assert_verified(env, acknowledged=45)
    finally:
        own_redis.stop()
        if restarted:
            restarted.stop()


def env_stream(env):
    return env.get("STREAM_KEY", "statuspipe:callbacks")


def test_redis_stopped_means_503_within_a_second(spawn, pg_url, db):
    own_redis = services.RedisProcess()
    try:
        env = make_env(pg_url, own_redis.url)
        _, base = start_web(spawn, env)
        assert send(base, callback_fields(new_sid(), "sent"))[0] == 200

        own_redis.proc.send_signal(signal.SIGSTOP)  # slow: accepts, never answers
        started = time.monotonic()
        status, _, headers = send(base, callback_fields(new_sid(), "sent"))
        assert status == 503
        assert time.monotonic() - started < 1.0
        assert "Retry-After" in headers
        own_redis.proc.send_signal(signal.SIGCONT)

        own_redis.proc.kill()  # gone: connection refused
        own_redis.proc.wait()
        started = time.monotonic()
        status, _, _ = send(base, callback_fields(new_sid(), "sent"))
        assert status == 503
        assert time.monotonic() - started < 1.0
        assert http("GET", base + "/readyz")[0] == 503
        assert http("GET", base + "/healthz")[0] == 200
    finally:
        own_redis.stop()


# Keeps Redis busy for ARGV[1] ms: every other command waits until it ends.
BUSY_LUA = """
local t = redis.call('TIME'); local start = t[1] * 1000000 + t[2]
repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - start >= tonumber(ARGV[1]) * 1000
return 1
"""


def test_a_slow_redis_still_gets_an_answer_within_the_timeout(spawn, pg_url, db):
    """Each round trip to a slow Redis may take nearly INGEST_REDIS_TIMEOUT; a new connection
    and a script reload take several. The whole enqueue still answers within the timeout."""
    own_redis = services.RedisProcess()
    busy = threading.Event()

    def hog() -> None:
        client = redis.Redis.from_url(own_redis.url)
        while not busy.is_set():
            client.eval(BUSY_LUA, 0, 400)

    hogger = threading.Thread(target=hog, daemon=True)
    try:
        env = make_env(pg_url, own_redis.url, INGEST_REDIS_TIMEOUT="0.5")
        _, base = start_web(spawn, env)
        hogger.start()
        time.sleep(0.1)
        for _ in range(6):  # new connections in every gunicorn worker, and no script loaded
            started = time.monotonic()
            status, _, headers = send(base, callback_fields(new_sid(), "sent"))
            elapsed = time.monotonic() - started
            assert status in (200, 503)
            assert elapsed < 0.8, f"answered {status} after {elapsed:.2f}s"
            assert status == 200 or "Retry-After" in headers
    finally:
        busy.set()
        hogger.join(timeout=5)
        own_redis.stop()


def test_redis_restarted_in_between_is_200_again_at_once(spawn, pg_url, db):
    """Each ingress process keeps its Redis connection between requests: after Redis restarts
    (its connections closed, its script cache empty) the next callbacks are accepted, not 503."""
    own_redis = services.RedisProcess()
    restarted = None
    try:
        env = make_env(pg_url, own_redis.url)
        _, base = start_web(spawn, env)
        for _ in range(6):  # reach every gunicorn worker
            assert send(base, callback_fields(new_sid(), "sent"))[0] == 200
        own_redis.stop()
        restarted = services.RedisProcess(port=own_redis.port)
        statuses = [send(base, callback_fields(new_sid(), "sent"))[0] for _ in range(6)]
        assert statuses == [200] * 6
        assert redis.Redis.from_url(restarted.url).xlen(env_stream(env)) == 6
    finally:
        own_redis.stop()
        if restarted:
            restarted.stop()


@pytest.mark.parametrize(
    ("cmd", "unset", "message"),
    [
        (
            ["celery", "-A", "workers.celery_app", "worker"],
            "DATABASE_URL",
            "DATABASE_URL is required",
        ),
        (["gunicorn", "ingest.wsgi:app"], "TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN is required"),
        (["gunicorn", "ingest.wsgi:app"], "API_TOKEN", "API_TOKEN is required"),
    ],
)
def test_a_missing_setting_stops_the_process_with_one_line(
    spawn, pg_url, redis_base_url, cmd, unset, message
):
    env = make_env(pg_url, redis_base_url, PORT=services.free_port())
    env[unset] = ""
    proc = spawn(cmd[0], [str(BIN / cmd[0]), *cmd[1:]], env)
    proc.proc.wait(timeout=30)
    assert proc.proc.returncode != 0
    assert message in proc.output()
