"""`verify` and dead-letter replay against real Redis and PostgreSQL: the enqueue script's ledger,
the drain, and the comparison, in-process (the fault tests in test_pipeline.py run the command)."""

from __future__ import annotations

import random
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from devtools.drain import drain_until_empty
from shared import ledger, stream
from shared.db import make_sessionmaker
from shared.models import DeadLetter, MessageEvent
from tests.twilio_fixtures import callback_fields, new_sid
from workers.drain import Drainer
from workers.store.replay import replay
from workers.verify import verify
from workers.verify.sources import read_ledger


def minutes_ago(n: float) -> float:
    """A receive time n minutes back, inside a minute that is complete by now."""
    return time.time() - n * 60


def enqueue(settings, client, sid, status, received=None, **extra):
    enq = stream.Enqueuer(
        client, settings.stream_key, settings.max_backlog, None, settings.ledger_retention_hours
    )
    body = urlencode(callback_fields(sid, status, **extra)).encode()
    received = minutes_ago(2) if received is None else received
    return enq.enqueue(body=body, query=b"", method="POST", token="", received=received,
                       sid=sid, status=status)  # fmt: skip


@pytest.fixture
def drainer(settings, redis_client, db):
    stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)
    return Drainer(settings, redis_client, make_sessionmaker(db), name="verify-test")


def test_the_script_adds_what_the_python_mirror_computes(settings, redis_client):
    expected: dict[int, ledger.Tally] = {}
    for _ in range(200):
        sid = random.choice(("SM", "MM")) + f"{random.getrandbits(128):032x}"
        status = random.choice(("sent", "delivered", "an unknown, ünicode status"))
        received = minutes_ago(random.uniform(1.5, 6))
        enqueue(settings, redis_client, sid, status, received)
        expected.setdefault(ledger.bucket_of(received), ledger.Tally()).add(sid, status)
    got = read_ledger(redis_client, settings.stream_key, sorted(expected))
    assert {b: t.cells for b, t in got.items()} == {b: t.cells for b, t in expected.items()}
    cell = next(iter(expected[min(expected)].cells))
    ttl = redis_client.ttl(ledger.cell_keys(settings.stream_key, min(expected))[cell])
    assert settings.ledger_retention_hours * 3600 < ttl <= settings.ledger_retention_hours * 3660


def test_drained_callbacks_with_retries_across_minutes_verify(settings, redis_client, db, drainer):
    sids = [new_sid() for _ in range(20)]
    for sid in sids:
        enqueue(settings, redis_client, sid, "sent", minutes_ago(4))
        enqueue(settings, redis_client, sid, "delivered", minutes_ago(3.5))
    for sid in sids[:5]:  # Twilio's retries, a minute or more after the first
        enqueue(settings, redis_client, sid, "delivered", minutes_ago(2))
    drain_until_empty(drainer)
    report = verify(settings, redis_client, db)
    assert report.ok, report
    assert (report.acknowledged, report.stored, report.dead, report.queued) == (45, 45, 0, 0)
    assert report.findings == []


def test_callbacks_still_in_redis_are_queued_not_lost(settings, redis_client, db, drainer):
    for _ in range(10):
        enqueue(settings, redis_client, new_sid(), "sent")
    drainer._read(4, None)  # read, never stored: pending, as behind a dead worker
    report = verify(settings, redis_client, db)
    assert report.ok
    assert (report.acknowledged, report.stored, report.queued) == (10, 0, 10)


def test_stored_but_not_yet_deleted_from_the_stream_counts_once(
    settings, redis_client, db, drainer
):
    for _ in range(10):
        enqueue(settings, redis_client, new_sid(), "sent")

    def die_before_ack(*_):
        raise SystemExit("killed between commit and XACK")

    drainer._ack = die_before_ack
    with pytest.raises(SystemExit):
        drainer.step()
    assert redis_client.xlen(settings.stream_key) == 10
    report = verify(settings, redis_client, db)
    assert report.ok
    assert (report.acknowledged, report.stored, report.queued) == (10, 10, 0)


def test_a_deleted_audit_row_is_named(settings, redis_client, db, drainer):
    sids = [new_sid() for _ in range(10)]
    for sid in sids:
        enqueue(settings, redis_client, sid, "delivered")
    drain_until_empty(drainer)
    with Session(db) as session, session.begin():
        session.execute(delete(MessageEvent).where(MessageEvent.message_sid == sids[3]))
    report = verify(settings, redis_client, db)
    assert not report.ok
    assert [(f.named.sid, f.named.status, f.named.copies) for f in report.missing] == [
        (sids[3], "delivered", 1)
    ]
    assert "no audit row" in report.missing[0].note
    assert report.disagreeing_minutes[0][1:] == (10, 9)


def test_a_lost_duplicate_is_named_too(settings, redis_client, db, drainer):
    sid = new_sid()
    for _ in range(3):
        enqueue(settings, redis_client, sid, "delivered")
    drain_until_empty(drainer)
    with Session(db) as session, session.begin():
        session.get(MessageEvent, (sid, "delivered")).duplicate_count = 1
    report = verify(settings, redis_client, db)
    assert [(f.named.sid, f.named.copies) for f in report.missing] == [(sid, 1)]


def dead_letters(db):
    with Session(db) as session:
        return {d.id: d.reason for d in session.scalars(select(DeadLetter))}


def test_dead_letters_are_accounted_for_and_what_still_fails_stays(
    settings, redis_client, db, drainer
):
    enqueue(settings, redis_client, new_sid(), "failed", ErrorCode="99999999999")  # > integer
    enqueue(settings, redis_client, new_sid(), "sent", To="+1\x00")  # a NUL
    enqueue(settings, redis_client, new_sid(), "sent")
    drain_until_empty(drainer)
    report = verify(settings, redis_client, db)
    assert report.ok
    assert (report.acknowledged, report.stored, report.dead) == (3, 1, 2)

    letters = dead_letters(db)
    result = replay(make_sessionmaker(db), sorted(letters))
    assert result.stored == []
    assert sorted(result.failed) == sorted(letters)
    after = dead_letters(db)
    assert sorted(after) == sorted(letters)
    assert any("database refused it" in r and "integer" in r for r in after.values())
    assert any("NUL" in r for r in after.values())
    assert verify(settings, redis_client, db).ok


def _dead_letter_of(settings, client, sid, status, received):
    """A callback acknowledged by the ingress (in the ledger) that an older release could not
    store: its stream entry taken off the stream into dead_letters, as the drain would."""
    stream_id = enqueue(settings, client, sid, status, received).decode()
    ((_, fields),) = client.xrange(settings.stream_key, stream_id, stream_id)
    client.xdel(settings.stream_key, stream_id)
    entry = {k.decode(): v.decode() for k, v in fields.items()}
    return DeadLetter(stream_id=stream_id, reason="database refused it: (a bug)", entry=entry)


def test_replay_stores_each_once_removes_it_and_verify_agrees(settings, redis_client, db, drainer):
    fresh, retried = new_sid(), new_sid()
    enqueue(settings, redis_client, retried, "delivered", minutes_ago(3))  # stored normally
    drain_until_empty(drainer)
    letters = [
        _dead_letter_of(settings, redis_client, fresh, "delivered", minutes_ago(3)),
        # The first of Twilio's two deliveries of this status was dead-lettered, the retry
        # stored: replayed, it is one more duplicate of the stored pair, not a second row.
        _dead_letter_of(settings, redis_client, retried, "delivered", minutes_ago(3.2)),
    ]
    with Session(db) as session, session.begin():
        session.add_all(letters)
    ids = sorted(dead_letters(db))
    assert verify(settings, redis_client, db).ok  # dead-lettered: accounted for

    sessions = make_sessionmaker(db)
    result = replay(sessions, ids)
    assert (sorted(result.stored), result.duplicates, result.failed) == (ids, [ids[1]], {})
    assert dead_letters(db) == {}
    assert replay(sessions, ids).not_found == ids  # a second replay finds nothing to do
    with Session(db) as session:
        counts = dict(session.execute(select(MessageEvent.message_sid,
                                             MessageEvent.duplicate_count)).all())  # fmt: skip
        assert session.scalar(select(func.count()).select_from(MessageEvent)) == 2
    assert counts == {fresh: 0, retried: 1}
    report = verify(settings, redis_client, db)
    assert report.ok, report
    assert (report.acknowledged, report.stored, report.dead) == (3, 3, 0)
