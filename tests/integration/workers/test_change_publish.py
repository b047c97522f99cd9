"""The drain publishes each batch's new status changes after its commit, and only then: an
in-process Drainer against real Redis and PostgreSQL."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import changes, stream
from shared.db import make_sessionmaker
from shared.models import MessageEvent
from tests.twilio_fixtures import callback_fields, new_sid, stored_callback
from workers.changes import ChangePublisher
from workers.drain import Drainer
from workers.store import store_batch


class PlanningError(Exception):
    pass


def enqueue(settings, redis_client, sid, status):
    enq = stream.Enqueuer(redis_client, settings.stream_key, settings.max_backlog)
    body = urlencode(callback_fields(sid, status)).encode()
    enq.enqueue(body=body, query=b"", method="POST", token="", received=time.time())


def read_new(drainer):
    entries, spans = drainer._read_new()
    assert entries
    return entries, spans


def published(settings, redis_client):
    return [
        (c.sid, c.status)
        for _, fields in redis_client.xrange(settings.changes_stream_key)
        for c in changes.decode(fields[changes.FIELD.encode()])
    ]


@pytest.fixture
def make_drainer(settings, redis_client, db):
    stream.ensure_group(redis_client, settings.stream_key, settings.consumer_group)

    def _make(plan_actions=None):
        return Drainer(
            settings, redis_client, make_sessionmaker(db), name="t", plan_actions=plan_actions,
            publish_changes=ChangePublisher(settings, redis_client).queue,
        )  # fmt: skip

    return _make


def test_a_rolled_back_batch_publishes_nothing(settings, redis_client, db, make_drainer):
    sids = [new_sid() for _ in range(5)]
    for sid in sids:
        enqueue(settings, redis_client, sid, "sent")

    def fail(session, rows):
        raise PlanningError("the transaction rolls back")

    failing = make_drainer(plan_actions=fail)
    entries, spans = read_new(failing)
    with pytest.raises(PlanningError):
        failing.process(entries, spans)
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(MessageEvent)) == 0
    assert published(settings, redis_client) == []

    # The same entries, stored for real (as a takeover would), are published once.
    ok = make_drainer()
    ok.process(entries)
    assert sorted(published(settings, redis_client)) == sorted((sid, "sent") for sid in sids)


def test_a_worker_that_dies_after_its_commit_loses_no_change_and_repeats_none(
    settings, redis_client, db, make_drainer
):
    earlier, later = new_sid(), new_sid()
    drainer = make_drainer()
    enqueue(settings, redis_client, earlier, "sent")
    drainer.process(*read_new(drainer))  # stored and published
    # A retry of that pair (a later stamp) and a new pair, in a batch whose worker dies after
    # its commit: its XACK and its publish never happen (they are one Redis transaction).
    enqueue(settings, redis_client, earlier, "sent")
    enqueue(settings, redis_client, later, "sent")
    enqueue(settings, redis_client, later, "delivered")
    crashed = make_drainer()

    def killed(ids, also=None):
        raise SystemExit("killed between commit and XACK")

    crashed._ack = killed
    entries, spans = read_new(crashed)
    with pytest.raises(SystemExit):
        crashed.process(entries, spans)
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(MessageEvent)) == 3
    assert published(settings, redis_client) == [(earlier, "sent")]

    # Taken over (no spans, as XAUTOCLAIM hands them): the receipts say "stored", and the
    # changes that batch created are published now, the retry's pair not again.
    result = make_drainer().process(entries)
    assert result.redelivered == 3
    assert published(settings, redis_client) == [
        (earlier, "sent"), (later, "sent"), (later, "delivered")
    ]  # fmt: skip
    assert redis_client.xpending(settings.stream_key, settings.consumer_group)["pending"] == 0


def test_only_pairs_stored_for_the_first_time_are_published(
    settings, redis_client, db, make_drainer
):
    sid = new_sid()
    drainer = make_drainer()
    enqueue(settings, redis_client, sid, "sent")
    drainer.process(*read_new(drainer))
    # Twilio sends "sent" again (a retry, a later batch), then the final status.
    enqueue(settings, redis_client, sid, "sent")
    enqueue(settings, redis_client, sid, "delivered")
    enqueue(settings, redis_client, sid, "delivered")
    drainer.process(*read_new(drainer))
    assert published(settings, redis_client) == [(sid, "sent"), (sid, "delivered")]
    entries = redis_client.xrange(settings.changes_stream_key)
    assert len(entries) == 2  # one entry per batch


def test_a_conflicting_final_status_is_published_as_a_change(
    settings, redis_client, db, make_drainer
):
    sid = new_sid()
    drainer = make_drainer()
    enqueue(settings, redis_client, sid, "delivered")
    drainer.process(*read_new(drainer))
    enqueue(settings, redis_client, sid, "undelivered")
    drainer.process(*read_new(drainer))
    assert published(settings, redis_client) == [(sid, "delivered"), (sid, "undelivered")]


def test_store_batch_returns_only_first_time_pairs_on_both_databases(any_db):
    sid = new_sid()
    first = [stored_callback(sid, "sent", "1-0"), stored_callback(sid, "sent", "1-1")]
    later = [stored_callback(sid, "sent", "2-0"), stored_callback(sid, "failed", "2-1")]
    with Session(any_db) as session, session.begin():
        result = store_batch(session, first)
    assert [(r.first.message_sid, r.first.status) for r in result.changes] == [(sid, "sent")]
    with Session(any_db) as session, session.begin():
        result = store_batch(session, later)
    assert [(r.first.message_sid, r.first.status) for r in result.changes] == [(sid, "failed")]
