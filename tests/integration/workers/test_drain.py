"""The drain loop in-process against real Redis and PostgreSQL."""

import logging
import re
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session

from devtools.drain import drain_until_empty
from shared import stream
from shared.db import make_sessionmaker
from shared.models import CallbackReceipt, DeadLetter, Message, MessageEvent
from tests.twilio_fixtures import callback_fields, new_sid
from workers.drain import Drainer
from workers.verify import verify


def enqueue(settings, redis_client, fields, token="", body=None):
    enq = stream.Enqueuer(redis_client, settings.stream_key, settings.max_backlog)
    raw = body if body is not None else urlencode(fields).encode()
    # As the ingress does: the ledger counts what it acknowledges (the sid and status it checked).
    pair = {"sid": fields["MessageSid"], "status": fields["MessageStatus"]} if body is None else {}
    return enq.enqueue(
        body=raw, query=b"", method="POST", token=token, received=time.time(), **pair
    )


@pytest.fixture
def drainer_factory(settings, redis_client, db):
    sessions = make_sessionmaker(db)

    def _make(name):
        d = Drainer(settings, redis_client, sessions, name=name)
        stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)
        return d

    return _make


def count(db, model):
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_drains_everything_and_leaves_the_stream_empty(settings, redis_client, db, drainer_factory):
    sids = [new_sid() for _ in range(50)]
    for sid in sids:
        enqueue(settings, redis_client, callback_fields(sid, "sent"))
        enqueue(settings, redis_client, callback_fields(sid, "delivered"))
    stats = drain_until_empty(drainer_factory("a"))
    assert stats.stored == 100
    assert count(db, MessageEvent) == 100
    assert count(db, Message) == 50
    # One read of the stream, one receipt: a span, not a row per callback.
    assert (stats.batches, count(db, CallbackReceipt)) == (1, 1)
    assert redis_client.xlen(settings.stream_key) == 0
    pending = redis_client.xpending(settings.stream_key, settings.consumer_group)
    assert pending["pending"] == 0


def test_malformed_entries_are_dead_lettered_without_blocking_the_batch(
    settings, redis_client, db, drainer_factory
):
    good = new_sid()
    enqueue(settings, redis_client, callback_fields(good, "sent"))
    enqueue(settings, redis_client, {}, body=b"MessageStatus=sent")
    enqueue(settings, redis_client, {}, body=b"MessageSid=\xff\xfe&MessageStatus=sent")
    enqueue(settings, redis_client, callback_fields(new_sid(), "delivered"))
    stats = drain_until_empty(drainer_factory("a"))
    assert (stats.stored, stats.dead) == (2, 2)
    with Session(db) as session:
        reasons = sorted(session.scalars(select(DeadLetter.reason)).all())
    assert reasons[0] == "MessageSid is missing"
    assert "not decodable" in reasons[1]
    assert redis_client.xlen(settings.stream_key) == 0


def test_a_row_the_database_refuses_is_dead_lettered_alone(
    settings, redis_client, db, drainer_factory
):
    sids = [new_sid() for _ in range(5)]
    for sid in sids:
        enqueue(settings, redis_client, callback_fields(sid, "sent"))
    # Parses, but overflows PostgreSQL's integer: only this one goes to the dead-letter store.
    enqueue(settings, redis_client, callback_fields(new_sid(), "failed", ErrorCode="99999999999"))
    stats = drain_until_empty(drainer_factory("a"))
    assert (stats.stored, stats.dead) == (5, 1)
    with Session(db) as session:
        (reason,) = session.scalars(select(DeadLetter.reason)).all()
    assert reason.startswith("database refused it: ")
    assert "out of range for type integer" in reason
    assert count(db, Message) == 5


def test_nul_characters_are_dead_lettered_with_a_reason(
    settings, redis_client, db, drainer_factory
):
    enqueue(settings, redis_client, callback_fields(new_sid(), "sent", To="+1\x00"))
    enqueue(settings, redis_client, callback_fields(new_sid(), "sent"))
    stats = drain_until_empty(drainer_factory("a"))
    assert (stats.stored, stats.dead) == (1, 1)
    with Session(db) as session:
        (row,) = session.scalars(select(DeadLetter)).all()
    assert "NUL" in row.reason
    assert "\\x00" in row.entry["b"] or "%00" in row.entry["b"]


def test_entries_of_a_crashed_consumer_are_taken_over_and_counted_once(
    settings, redis_client, db, drainer_factory, caplog
):
    sids = [new_sid() for _ in range(30)]
    for sid in sids:
        enqueue(settings, redis_client, callback_fields(sid, "delivered"))

    crashed = drainer_factory("crashed")

    def die_before_ack(ids):
        raise SystemExit("killed between commit and XACK")

    crashed._ack = die_before_ack
    with pytest.raises(SystemExit):
        crashed.step()  # committed to the database, never acknowledged
    assert redis_client.xpending(settings.stream_key, settings.consumer_group)["pending"] == 30

    time.sleep(settings.claim_idle_seconds + 0.2)
    survivor = drainer_factory("survivor")
    caplog.set_level(logging.WARNING, logger="workers.drain")
    stats = drain_until_empty(survivor)
    assert "took over 30 callbacks from a silent worker: 0 stored now, 30 already stored" in [
        r.getMessage() for r in caplog.records
    ]
    assert stats.claimed == 30
    assert stats.redelivered == 30
    assert stats.stored == 0
    with Session(db) as session:
        dupes = session.scalars(select(MessageEvent.duplicate_count)).all()
    assert sorted(dupes) == [0] * 30
    assert redis_client.xpending(settings.stream_key, settings.consumer_group)["pending"] == 0
    assert redis_client.xlen(settings.stream_key) == 0


def test_group_is_recreated_if_redis_lost_it(settings, redis_client, db, drainer_factory):
    d = drainer_factory("a")
    redis_client.delete(settings.stream_key)
    enqueue(settings, redis_client, callback_fields(new_sid(), "sent"))
    d.stop.set()
    # run() must survive NOGROUP: recreate the group and drain.
    d.stop.clear()
    import threading

    t = threading.Thread(target=d.run)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and count(db, Message) == 0:
        time.sleep(0.05)
    d.stop.set()
    t.join(10)
    assert count(db, Message) == 1


@pytest.mark.parametrize(("linger_ms", "first_batch"), [(0, 1), (400, 6)])
def test_a_trickle_lingers_into_one_transaction(settings, redis_client, db, linger_ms, first_batch):
    """BATCH_LINGER_MS: a part-full read waits once for more before storing."""
    import dataclasses
    import threading

    lingering = dataclasses.replace(settings, batch_linger_ms=linger_ms)
    drainer = Drainer(lingering, redis_client, make_sessionmaker(db), name="trickle")
    stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)
    enqueue(settings, redis_client, callback_fields(new_sid(), "sent"))

    def later():
        time.sleep(0.1)
        for _ in range(5):
            enqueue(settings, redis_client, callback_fields(new_sid(), "sent"))

    feeder = threading.Thread(target=later)
    feeder.start()
    assert drainer.step() == first_batch
    feeder.join()
    assert drainer.stats.batches == 1
    assert count(db, MessageEvent) == first_batch


def test_a_connection_lost_during_copy_is_retried_and_counted_once(
    settings, redis_client, db, monkeypatch
):
    """PostgreSQL drops the worker's connection in the middle of a batch (failover, restart):
    the batch is retried on a new connection and every callback is stored once."""
    from sqlalchemy import text

    from shared.db import make_engine
    from workers.store import postgres as persist_postgres

    engine = make_engine(settings)  # as the worker builds it
    drainer = Drainer(settings, redis_client, make_sessionmaker(engine), name="lost")
    stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)
    sids = [new_sid() for _ in range(20)]
    for sid in sids:
        enqueue(settings, redis_client, callback_fields(sid, "sent"))

    real_copy = persist_postgres._copy
    killed: list[int] = []

    def copy_on_a_dropped_connection(session, table, lines):
        if not killed:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
            with db.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)
        return real_copy(session, table, lines)

    monkeypatch.setattr(persist_postgres, "_copy", copy_on_a_dropped_connection)
    stats = drain_until_empty(drainer)
    engine.dispose()
    assert killed
    assert (stats.stored, stats.redelivered, stats.dead) == (20, 0, 0)
    with Session(db) as session:
        rows = session.execute(select(MessageEvent.message_sid, MessageEvent.duplicate_count))
        assert sorted(rows) == sorted((sid, 0) for sid in sids)
    assert redis_client.xlen(settings.stream_key) == 0
    assert_verified(settings, redis_client, db, 20)


def assert_verified(settings, redis_client, db, acknowledged):
    """verify agrees: every callback the ledger counted is stored."""
    report = verify(settings, redis_client, db)
    assert report.ok, report
    assert (report.acknowledged, report.stored) == (acknowledged, acknowledged)


def test_progress_tells_the_rate_and_the_backlog_and_is_silent_when_idle(
    settings, redis_client, db, drainer_factory, caplog
):
    drainer = drainer_factory("a")
    for _ in range(3):
        enqueue(settings, redis_client, callback_fields(new_sid(), "sent"))
    drainer.process(drainer._read(2, None))  # one entry left waiting
    caplog.set_level(logging.INFO, logger="workers.drain")
    drainer._progress()
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert re.search(r"stored 2 callbacks in the last \d+s \(\d+/s\); backlog 1 in the", line)
    caplog.clear()
    drainer._progress()  # nothing stored since: nothing to say
    assert caplog.records == []


def test_a_read_only_database_is_waited_out_and_no_callback_is_blamed(
    settings, redis_client, pg_url, db
):
    """A standby about to be promoted, or a managed database gone read-only on a full disk,
    refuses every write with an error about itself, not about the rows: the batch waits and
    nothing is dead-lettered (and so acknowledged) without being stored."""
    engine = create_engine(pg_url)
    refusals = {"left": 2}

    @event.listens_for(engine, "begin")
    def read_only(conn):
        if refusals["left"] > 0:
            refusals["left"] -= 1
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    drainer = Drainer(settings, redis_client, make_sessionmaker(engine), name="a")
    stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)
    sids = [new_sid() for _ in range(4)]
    for sid in sids:
        enqueue(settings, redis_client, callback_fields(sid, "sent"))
    stats = drain_until_empty(drainer)
    engine.dispose()
    assert refusals["left"] == 0
    assert (stats.stored, stats.dead) == (4, 0)
    assert count(db, DeadLetter) == 0
    assert count(db, MessageEvent) == 4
    assert_verified(settings, redis_client, db, 4)


def test_only_idle_consumers_with_nothing_pending_are_forgotten(settings, redis_client):
    key, group = settings.stream_key, settings.consumer_group
    stream.ensure_group(redis_client, key, group)
    for _ in range(3):
        redis_client.xadd(key, {"b": "x"})
    for consumer in ("dead-done", "me"):  # each stored and acknowledged what it read
        read = redis_client.xreadgroup(group, consumer, {key: ">"}, count=1)[0][1]
        redis_client.xack(key, group, read[0][0])
    redis_client.xreadgroup(group, "dead-holding", {key: ">"}, count=1)  # still pending
    time.sleep(0.1)
    assert stream.remove_idle_consumers(redis_client, key, group, keep="me", idle_ms=50) == [
        "dead-done"
    ]
    names = {c["name"].decode() for c in redis_client.xinfo_consumers(key, group)}
    assert names == {"dead-holding", "me"}
    assert stream.remove_idle_consumers(redis_client, key, group, keep="me", idle_ms=60_000) == []
