"""The actions outbox in the drain's transaction, on PostgreSQL and SQLite (`make run`): one row
per failed message whatever the duplicates, redeliveries and batches; none for what needs none."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.error_codes import load_error_codes
from shared.models import Action
from tests.integration.workers.test_store import cb
from tests.twilio_fixtures import new_sid
from workers.actions.outbox import ActionPlanner
from workers.store import store_batch

PLANNER = ActionPlanner(load_error_codes(None, "alert"))


def stored(db, callbacks, spans=None):
    with Session(db) as session, session.begin():
        return store_batch(session, callbacks, (), spans, PLANNER)


def actions(db):
    with Session(db) as session:
        rows = session.scalars(select(Action).order_by(Action.message_sid))
        return [(a.message_sid, a.status, a.error_code, a.kind, a.contact_state, a.state)
                for a in rows]  # fmt: skip


def test_each_failure_gets_the_action_its_code_calls_for(any_db):
    retry, alert, optout, none, fine = (new_sid() for _ in range(5))
    result = stored(any_db, [
        cb(retry, "undelivered", code=30003), cb(alert, "failed", code=30007),
        cb(optout, "undelivered", code=21610), cb(none, "undelivered", code=30009),
        cb(fine, "delivered"), cb(new_sid(), "failed"),
    ])  # fmt: skip
    assert len(result.action_ids) == 3
    assert sorted(actions(any_db)) == sorted([
        (retry, "undelivered", 30003, "retry", None, "pending"),
        (alert, "failed", 30007, "alert", None, "pending"),
        (optout, "undelivered", 21610, "contact_update", "opted_out", "pending"),
    ])  # fmt: skip


def test_duplicates_redeliveries_and_later_batches_add_no_second_action(any_db):
    sid = new_sid()
    first = cb(sid, "undelivered", code=30003)
    assert len(stored(any_db, [first, cb(sid, "undelivered", code=30003)]).action_ids) == 1
    assert stored(any_db, [first]).action_ids == []  # the same stream entry, redelivered
    assert stored(any_db, [cb(sid, "undelivered", code=30003)]).action_ids == []  # Twilio's retry
    assert stored(any_db, [cb(sid, "failed", code=30008)]).action_ids == []  # another final status
    assert len(actions(any_db)) == 1


def test_concurrent_batches_with_the_same_failure_make_one_action(db):
    """PostgreSQL only: SQLite has one writer, so its batches cannot be concurrent."""
    sid = new_sid()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: stored(db, [cb(sid, "undelivered", code=30003)]),
                                range(4)))  # fmt: skip
    assert sum(len(r.action_ids) for r in results) == 1
    assert len(actions(db)) == 1


def test_without_a_planner_nothing_is_decided(any_db):
    with Session(any_db) as session, session.begin():
        result = store_batch(session, [cb(new_sid(), "undelivered", code=30003)])
    assert result.action_ids == []
    assert actions(any_db) == []
