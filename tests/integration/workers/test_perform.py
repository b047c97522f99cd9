"""One action at a time, in-process, against PostgreSQL and the fake Twilio: the branches the
process-level tests (test_actions.py) do not reach quickly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from sqlalchemy.orm import Session

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID, FakeTwilio
from shared.config import load_settings
from shared.error_codes import load_error_codes
from shared.models import Action, OutboundMessage
from tests.conftest import make_env
from tests.integration.workers.test_store import cb
from tests.twilio_fixtures import AUTH_TOKEN, new_sid
from workers.actions.context import ActionContext
from workers.actions.outbox import ActionPlanner
from workers.actions.perform import perform_action
from workers.store import store_batch

CODES = load_error_codes(None, "alert")


@pytest.fixture
def fake():
    with FakeTwilio(auth_token=AUTH_TOKEN) as running:
        yield running


def context(pg_url, redis_base_url, fake, **env) -> ActionContext:
    overrides = {"TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID, "TWILIO_API_BASE_URL": fake.base_url,
                 "RETRY_BACKOFF_SECONDS": "60", "TWILIO_TIMEOUT": "1", **env}  # fmt: skip
    settings = load_settings(make_env(pg_url, redis_base_url, **overrides))
    ctx = ActionContext.build(settings)
    ctx.redis = fakeredis.FakeRedis()  # the rate limiter's window; not what is tested here
    return ctx


def sent_and_failed(db, sid: str | None = None) -> tuple[int, str]:
    """A message statuspipe sent (its record) that then failed with 30003: the action's id."""
    sid = sid or new_sid()
    with Session(db) as session, session.begin():
        session.add(OutboundMessage(sid=sid, to="+15005550006", from_="+15005550001", body="hi",
                                    media_urls=[], attempt=1, send_state="created"))  # fmt: skip
        result = store_batch(session, [cb(sid, "undelivered", code=30003)],
                             plan_actions=ActionPlanner(CODES))  # fmt: skip
    return result.action_ids[0], sid


def action(db, action_id) -> Action:
    with Session(db) as session:
        return session.get(Action, action_id)


def test_a_resend_waits_for_its_backoff(pg_url, redis_base_url, db, fake):
    action_id, _ = sent_and_failed(db)
    nxt = perform_action(context(pg_url, redis_base_url, fake), action_id)
    assert 60 <= nxt.run_again_in <= 120
    assert nxt.finished is None  # nothing to count yet
    assert (action(db, action_id).state, fake.created) == ("pending", [])


def test_after_its_backoff_the_resend_is_created_once(pg_url, redis_base_url, db, fake):
    ctx = context(pg_url, redis_base_url, fake)
    action_id, _ = sent_and_failed(db)
    later = datetime.now(UTC) + timedelta(minutes=5)
    first = perform_action(ctx, action_id, now=later)
    assert (first.run_again_in, first.finished) == (None, ("retry", "sent"))
    again = perform_action(ctx, action_id, now=later)  # done: nothing more, nothing counted twice
    assert (again.run_again_in, again.finished) == (None, None)
    [created] = fake.created
    assert created.form["Attempt"] == ["2"]
    assert action(db, action_id).outcome == "sent"


def test_a_message_first_reported_delivered_is_not_resent(pg_url, redis_base_url, db, fake):
    sid = new_sid()
    with Session(db) as session, session.begin():
        store_batch(session, [cb(sid, "delivered")])
    action_id, _ = sent_and_failed(db, sid)  # a conflicting final status: flagged, kept second
    later = datetime.now(UTC) + timedelta(minutes=5)
    perform_action(context(pg_url, redis_base_url, fake), action_id, now=later)
    done = action(db, action_id)
    assert (done.outcome, fake.created) == ("skipped", [])
    assert "delivered" in done.detail


def test_without_twilio_settings_a_resend_fails_with_the_reason(pg_url, redis_base_url, db, fake):
    ctx = context(pg_url, redis_base_url, fake, TWILIO_ACCOUNT_SID="")
    action_id, _ = sent_and_failed(db)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert perform_action(ctx, action_id, now=later).run_again_in is None
    done = action(db, action_id)
    assert (done.state, done.outcome) == ("done", "failed")
    assert "TWILIO_ACCOUNT_SID" in done.detail
    assert fake.created == []


def test_a_stale_send_that_twilio_never_got_is_unknown_not_resent(pg_url, redis_base_url, db, fake):
    ctx = context(pg_url, redis_base_url, fake)
    action_id, _ = sent_and_failed(db)
    later = datetime.now(UTC) + timedelta(minutes=5)
    fake.fail_next_creates(400, code=21211)  # the call is refused: the action ends failed
    assert perform_action(ctx, action_id, now=later).finished == ("retry", "failed")
    assert action(db, action_id).outcome == "failed"
    # A worker that died in the call: the action says `sending`, Twilio has nothing.
    with Session(db) as session, session.begin():
        row = session.get(Action, action_id)
        row.state, row.outcome, row.updated_at = "sending", None, later
    settling = perform_action(ctx, action_id, now=later + timedelta(minutes=5))
    assert settling.finished == ("retry", "unknown")
    settled = action(db, action_id)
    assert (settled.state, settled.outcome) == ("done", "unknown")
    assert fake.created == []
