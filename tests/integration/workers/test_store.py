"""store_batch against real PostgreSQL (its array statements) and SQLite (the portable ones, for
`make run`): the rules of the audit trail and the current status hold on both."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from shared.callback import Callback
from shared.models import CallbackReceipt, DeadLetter, Message, MessageEvent
from tests.twilio_fixtures import new_sid
from workers.store import DeadEntry, purge_receipts, store_batch

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_ids = count(1)


def cb(sid, status, second=0, code=None, token=None, stream_id=None, **kw):
    return Callback(
        stream_id=stream_id or f"{1_700_000_000_000 + next(_ids)}-0",
        message_sid=sid,
        status=status,
        error_code=code,
        error_message=kw.get("error_message"),
        account_sid="AC" + "0" * 32,
        to="+15005550006",
        from_="+15005550001",
        messaging_service_sid=None,
        idempotency_token=token,
        received_at=(T0 + timedelta(seconds=second)).timestamp(),
        carrier_done_at=kw.get("carrier_done_at"),
        raw=f"MessageSid={sid}&MessageStatus={status}",
    )


@pytest.fixture
def db(any_db):
    return any_db


@pytest.fixture
def store(db):
    def _store(callbacks, dead=(), spans=None):
        with Session(db) as session, session.begin():
            return store_batch(session, callbacks, dead, spans)

    return _store


def receipts(db) -> int:
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(CallbackReceipt))


def message(db, sid) -> Message:
    with Session(db) as session:
        return session.get(Message, sid)


def events(db, sid) -> dict[str, MessageEvent]:
    with Session(db) as session:
        rows = session.scalars(select(MessageEvent).where(MessageEvent.message_sid == sid)).all()
        return {e.status: e for e in rows}


def test_sent_then_delivered(db, store):
    sid = new_sid()
    store([cb(sid, "sent", 1)])
    store([cb(sid, "delivered", 2, carrier_done_at=T0)])
    m = message(db, sid)
    assert (m.status, m.status_rank, m.needs_reconcile) == ("delivered", 4, False)
    assert m.created_at == T0 + timedelta(seconds=1)
    assert m.status_updated_at == T0 + timedelta(seconds=2)
    assert m.carrier_done_at == T0
    assert m.from_ == "+15005550001"
    assert set(events(db, sid)) == {"sent", "delivered"}


def test_delivered_before_sent_never_regresses(db, store):
    sid = new_sid()
    store([cb(sid, "delivered", 2)])
    store([cb(sid, "sent", 1)])
    m = message(db, sid)
    assert m.status == "delivered"
    assert m.created_at == T0 + timedelta(seconds=1)  # the earliest callback seen
    assert set(events(db, sid)) == {"sent", "delivered"}


def test_duplicates_in_and_across_batches_count_once_each(db, store):
    sid = new_sid()
    store([cb(sid, "delivered", s, token="same") for s in range(3)])
    store([cb(sid, "delivered", 9, token="other"), cb(sid, "delivered", 10)])
    (only,) = events(db, sid).values()
    assert only.duplicate_count == 4
    assert only.idempotency_token == "same"


def test_storing_the_same_entries_again_changes_nothing(db, store):
    sid = new_sid()
    batch = [cb(sid, "sent", 1), cb(sid, "delivered", 2), cb(sid, "delivered", 3)]
    first = store(batch)
    again = store(batch)  # a worker died after commit, before XACK
    assert (first.stored, first.redelivered) == (3, 0)
    assert (again.stored, again.redelivered) == (0, 3)
    assert events(db, sid)["delivered"].duplicate_count == 1
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(CallbackReceipt)) == 3


def test_second_final_status_is_recorded_kept_out_and_flagged(db, store):
    sid = new_sid()
    store([cb(sid, "delivered", 1)])
    result = store([cb(sid, "undelivered", 2, code=30003)])
    m = message(db, sid)
    assert (m.status, m.error_code, m.needs_reconcile) == ("delivered", None, True)
    assert result.conflicts == [sid]
    assert set(events(db, sid)) == {"delivered", "undelivered"}


def test_conflict_inside_one_batch_is_flagged_too(db, store):
    sid = new_sid()
    store([cb(sid, "failed", 1, code=30008), cb(sid, "delivered", 2)])
    m = message(db, sid)
    assert (m.status, m.error_code, m.needs_reconcile) == ("failed", 30008, True)


def test_read_after_conflicting_finals_is_still_flagged(db, store):
    sid = new_sid()
    store([cb(sid, "undelivered", 1)])
    store([cb(sid, "delivered", 2), cb(sid, "read", 3)])
    m = message(db, sid)
    assert (m.status, m.needs_reconcile) == ("read", True)


def test_unknown_status_is_stored_and_moves_nothing(db, store):
    sid = new_sid()
    store([cb(sid, "teleported", 1)])
    m = message(db, sid)
    assert (m.status, m.status_rank) == (None, -1)
    store([cb(sid, "sent", 2), cb(sid, "partially_delivered", 3)])
    m = message(db, sid)
    assert m.status == "sent"
    assert set(events(db, sid)) == {"teleported", "sent", "partially_delivered"}


def test_error_code_goes_with_the_status_that_set_it(db, store):
    sid = new_sid()
    store([cb(sid, "undelivered", 2, code=30003, error_message="Unreachable")])
    store([cb(sid, "sent", 1)])
    m = message(db, sid)
    assert (m.error_code, m.error_message) == (30003, "Unreachable")


def test_dead_letters_are_kept_once(db, store):
    dead = [DeadEntry("5-0", "MessageSid is missing", {"b": "x=1"})]
    store([], dead)
    store([], dead)
    with Session(db) as session:
        (row,) = session.scalars(select(DeadLetter)).all()
    assert row.reason == "MessageSid is missing"


def test_rank_guard_holds_against_a_stale_writer(db, store):
    """Another worker's stale view cannot regress the row: the guard is in the statement."""
    sid = new_sid()
    store([cb(sid, "delivered", 2)])
    with db.begin() as conn:
        conn.execute(text("UPDATE messages SET status_rank = 4 WHERE sid = :s"), {"s": sid})
    store([cb(sid, "queued", 0), cb(sid, "sending", 1), cb(sid, "sent", 1)])
    assert message(db, sid).status == "delivered"


def test_one_receipt_covers_a_contiguous_read(db, store):
    sid = new_sid()
    batch = [cb(sid, "sent", 1, stream_id="100-0"), cb(sid, "delivered", 2, stream_id="100-1"),
             cb(sid, "delivered", 3, stream_id="105-0")]  # fmt: skip
    first = store(batch, spans=[("100-0", "105-0")])
    assert (first.stored, receipts(db)) == (3, 1)
    again = store(batch, spans=[("100-0", "105-0")])  # died after commit, before XACK
    assert (again.stored, again.redelivered) == (0, 3)
    assert events(db, sid)["delivered"].duplicate_count == 1


def test_entries_taken_over_one_by_one_are_recognised_inside_a_span(db, store):
    sid = new_sid()
    store([cb(sid, "sent", 1, stream_id="200-0"), cb(sid, "delivered", 2, stream_id="200-7")],
          spans=[("200-0", "200-7")])  # fmt: skip
    # XAUTOCLAIM hands back one stored entry and one never stored (its batch rolled back).
    other = new_sid()
    result = store([cb(sid, "delivered", 2, stream_id="200-7"), cb(other, "sent", 3,
                    stream_id="199-9")])  # fmt: skip
    assert (result.stored, result.redelivered) == (1, 1)
    assert events(db, sid)["delivered"].duplicate_count == 0
    assert set(events(db, other)) == {"sent"}


def test_a_rewound_group_stores_only_what_is_new(db, store):
    """XGROUP SETID back: a ">" read overlaps earlier spans; only new entries count."""
    sid = new_sid()
    store([cb(sid, "sent", 1, stream_id="300-0"), cb(sid, "delivered", 2, stream_id="300-1")],
          spans=[("300-0", "300-1")])  # fmt: skip
    replay = [cb(sid, "sent", 1, stream_id="300-0"), cb(sid, "delivered", 2, stream_id="300-1"),
              cb(sid, "read", 3, stream_id="301-0")]  # fmt: skip
    result = store(replay, spans=[("300-0", "301-0")])
    assert (result.stored, result.redelivered) == (1, 2)
    assert message(db, sid).status == "read"
    assert all(e.duplicate_count == 0 for e in events(db, sid).values())


def test_purge_forgets_only_old_receipts(db, store):
    store([cb(new_sid(), "sent")])
    with Session(db) as session, session.begin():
        old = datetime.now(UTC) - timedelta(days=4)
        session.execute(update(CallbackReceipt).values(processed_at=old))
    store([cb(new_sid(), "sent")])
    with Session(db) as session, session.begin():
        assert purge_receipts(session, 72) == 1
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(CallbackReceipt)) == 1


def test_another_final_after_read_is_flagged(db, store):
    """The row shows `read`, yet the first final status is remembered: a different one after
    it is still a conflict."""
    sid = new_sid()
    store([cb(sid, "delivered", 1), cb(sid, "read", 2)])
    result = store([cb(sid, "undelivered", 3)])
    m = message(db, sid)
    assert (m.status, m.final_status, m.needs_reconcile) == ("read", "delivered", True)
    assert m.reconcile_flagged_at is not None
    assert result.conflicts == [sid]


def test_repeated_final_status_is_no_conflict(db, store):
    sid = new_sid()
    store([cb(sid, "undelivered", 1, code=30003)])
    result = store([cb(sid, "undelivered", 2, code=30003), cb(sid, "sent", 0)])
    m = message(db, sid)
    assert (m.final_status, m.needs_reconcile, m.reconcile_flagged_at) == (
        "undelivered",
        False,
        None,
    )
    assert result.conflicts == []


def test_a_flagged_message_is_reported_once(db, store):
    sid = new_sid()
    store([cb(sid, "delivered", 1)])
    first = store([cb(sid, "failed", 2)])
    flagged_at = message(db, sid).reconcile_flagged_at
    again = store([cb(sid, "undelivered", 3)])
    assert (first.conflicts, again.conflicts) == ([sid], [])
    assert message(db, sid).reconcile_flagged_at == flagged_at
