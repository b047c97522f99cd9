"""Reconciliation against the fake Twilio REST API, reached by the real `twilio` client, on
PostgreSQL and SQLite: a lost callback is recovered, a 429 stops the run (the rest wait for the
next one), a second run changes nothing, a conflict is settled by Twilio's answer."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.fake_twilio import FakeTwilio
from ingest.api.views import message_document
from shared.config import load_settings
from shared.db import make_sessionmaker
from shared.models import Message, MessageEvent
from shared.twilio_client import make_twilio_client
from tests import report_fixture as fixture
from tests.twilio_fixtures import new_sid
from workers.reconcile.candidates import Policy
from workers.reconcile.run import reconcile, twilio_fetch

POLICY = Policy(after=timedelta(hours=12), max_age=timedelta(days=3))
TO = "+15005550006"


@pytest.fixture
def engine(any_db):
    return any_db


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as running:
        yield running


@pytest.fixture
def run(engine, fake):
    """One reconciliation run, as the beat job makes it, with the real client on the fake."""
    settings = load_settings(
        {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
         "TWILIO_API_BASE_URL": fake.base_url}
    )  # fmt: skip
    fetch = twilio_fetch(make_twilio_client(settings))
    sessions = make_sessionmaker(engine)

    def _run(limit=100):
        return reconcile(sessions, fetch, lambda: None, POLICY, limit)

    return _run


def stored_at(engine, sid, *steps, hours_ago=13):
    """Callbacks for `sid` as the drain stores them, the first `hours_ago` hours ago."""
    start = datetime.now(UTC) - timedelta(hours=hours_ago)
    fixture.store(
        engine,
        [
            fixture.callback(sid, status, start + timedelta(seconds=i), fixture.SENDER_A)
            for i, status in enumerate(steps)
        ],
    )


def message(engine, sid) -> Message:
    with Session(engine) as session:
        return session.get(Message, sid)


def events(engine, sid) -> dict[str, MessageEvent]:
    with Session(engine) as session:
        rows = session.scalars(select(MessageEvent).where(MessageEvent.message_sid == sid))
        return {e.status: e for e in rows}


def snapshot(engine) -> list[tuple]:
    with Session(engine) as session:
        messages = session.execute(select(Message.__table__).order_by(Message.sid)).all()
        audit = session.execute(
            select(MessageEvent.__table__).order_by(MessageEvent.message_sid, MessageEvent.status)
        ).all()
    return [tuple(r) for r in messages] + [tuple(r) for r in audit]


def test_a_lost_delivered_callback_is_recovered(engine, fake, run):
    sid = fake.add_message(TO, status="sent")
    stored_at(engine, sid, "sent")
    fake.set_status(sid, "delivered")  # Twilio moved on; its callback never came
    result = run()
    assert (result.due, result.fetched, result.changed, result.settled) == (1, 1, [sid], 1)
    assert result.stopped is None
    m = message(engine, sid)
    assert (m.status, m.final_status, m.settled_by_reconcile) == ("delivered", "delivered", True)
    assert m.reconciled_at is not None
    # Twilio's time of the change, not the time of the fetch.
    assert m.status_updated_at == fake.message(sid).date_updated.replace(microsecond=0)
    audit = events(engine, sid)
    assert (audit["sent"].source, audit["delivered"].source) == ("callback", "reconcile")
    assert "MessageStatus=delivered" in audit["delivered"].raw
    with Session(engine) as session:
        shown = message_document(session, sid)
    assert [(e["status"], e["source"]) for e in shown["events"]] == [
        ("sent", "callback"),
        ("delivered", "reconcile"),
    ]
    fetches = [r for r in fake.requests if r.path.endswith(f"/Messages/{sid}.json")]
    assert len(fetches) == 1


def test_a_second_run_changes_nothing(engine, fake, run):
    sids = []
    for status in ("delivered", "undelivered", "sent"):
        sid = fake.add_message(TO, status="sent")
        stored_at(engine, sid, "sent")
        fake.set_status(sid, status, 30003 if status == "undelivered" else None)
        sids.append(sid)
    first = run()
    assert sorted(first.changed) == sorted(sids[:2])
    assert first.settled == 2
    before = snapshot(engine)
    requests_before = len(fake.requests)
    second = run()
    assert (second.due, second.fetched, second.changed) == (0, 0, [])
    assert snapshot(engine) == before
    assert len(fake.requests) == requests_before
    assert message(engine, sids[1]).error_code == 30003


def test_a_429_stops_the_run_and_the_next_run_resumes(engine, fake, run):
    sids = []
    for _ in range(3):
        sid = fake.add_message(TO, status="sent")
        stored_at(engine, sid, "sent")
        fake.set_status(sid, "delivered")
        sids.append(sid)
    assert run(limit=1).changed == [sids[0]]  # oldest first
    fake.fail_next_fetches(429, retry_after=1)
    stopped = run()
    assert stopped.stopped
    assert "429" in stopped.stopped
    assert (stopped.due, stopped.fetched, stopped.changed) == (2, 0, [])
    assert {message(engine, sid).status for sid in sids[1:]} == {"sent"}
    assert {message(engine, sid).reconciled_at for sid in sids[1:]} == {None}
    resumed = run()
    assert sorted(resumed.changed) == sorted(sids[1:])
    assert {message(engine, sid).status for sid in sids} == {"delivered"}


def test_recent_and_old_messages_are_not_fetched(engine, fake, run):
    recent = fake.add_message(TO, status="sent")
    stored_at(engine, recent, "sent", hours_ago=2)
    old = fake.add_message(TO, status="sent")
    stored_at(engine, old, "sent", hours_ago=24 * 4)  # past RECONCILE_MAX_AGE_DAYS
    final = fake.add_message(TO, status="delivered")
    stored_at(engine, final, "sent", "delivered")
    assert run().due == 0
    assert fake.requests == []


def test_a_conflict_is_settled_by_what_twilio_says(engine, fake, run):
    sid = fake.add_message(TO, status="undelivered", error_code=30005)
    stored_at(engine, sid, "sent", "delivered", "undelivered", hours_ago=1)
    m = message(engine, sid)
    assert (m.status, m.needs_reconcile) == ("delivered", True)
    result = run()
    assert result.changed == [sid]
    assert result.settled == 0
    m = message(engine, sid)
    assert (m.status, m.final_status, m.error_code) == ("undelivered", "undelivered", 30005)
    assert (m.needs_reconcile, m.reconcile_flagged_at, m.settled_by_reconcile) == (
        False,
        None,
        False,
    )
    assert run().due == 0


def test_a_message_twilio_does_not_know_waits_instead_of_blocking_every_run(engine, fake, run):
    sid = new_sid()
    stored_at(engine, sid, "sent")
    result = run()
    assert (result.fetched, result.unknown_to_twilio, result.stopped) == (0, 1, None)
    assert message(engine, sid).reconciled_at is not None
    assert run().due == 0


def test_the_report_counts_what_only_reconciliation_brought(engine, fake, run):
    from zoneinfo import ZoneInfo

    from shared.reports.daily import daily_reports
    from shared.reports.definitions import day_window

    lost = fake.add_message(TO, status="sent")
    stored_at(engine, lost, "sent")
    fake.set_status(lost, "delivered")
    for _ in range(3):
        sid = new_sid()
        stored_at(engine, sid, "sent", "delivered")
    run()
    created = message(engine, lost).created_at
    with Session(engine) as session:
        (report,) = daily_reports(
            session, [day_window(created.date(), ZoneInfo("UTC"))], "UTC", str
        )
    assert report["counts"]["delivered"] == 4
    assert report["callback_loss_rate"] == 0.25
