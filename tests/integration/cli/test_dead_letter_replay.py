"""`statuspipe dead-letters replay` as an operator runs it."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import DeadLetter, MessageEvent
from tests.conftest import make_env
from tests.integration.cli.runner import statuspipe
from tests.twilio_fixtures import callback_fields, new_sid


def letter(stream_id: str, reason: str, **fields: str) -> DeadLetter:
    entry = {"b": urlencode(fields), "r": repr(time.time() - 60)}
    return DeadLetter(stream_id=stream_id, reason=reason, entry=entry)


def test_replay_stores_what_it_can_and_keeps_the_rest_with_the_new_reason(
    pg_url, redis_base_url, db
):
    good = new_sid()
    with Session(db) as session, session.begin():
        session.add(letter("5-0", "a bug, since fixed", **callback_fields(good, "delivered")))
        session.add(letter("6-0", "a bug, since fixed", MessageStatus="sent"))  # no sid
        session.add(letter("7-0", "something else", **callback_fields(new_sid(), "sent")))
    with Session(db) as session:
        ids = dict(session.execute(select(DeadLetter.stream_id, DeadLetter.id)).all())
    env = make_env(pg_url, redis_base_url)

    assert statuspipe(env, "dead-letters", "replay").returncode == 2  # nothing chosen
    result = statuspipe(env, "dead-letters", "replay", "--reason", "since fixed")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "replayed 1, still failing 1"
    assert any(line.endswith("\tstored") for line in lines)
    assert any("still failing: MessageSid is missing" in line for line in lines)

    with Session(db) as session:
        left = {d.stream_id: d.reason for d in session.scalars(select(DeadLetter))}
        assert session.get(MessageEvent, (good, "delivered")) is not None
    assert left == {"6-0": "MessageSid is missing", "7-0": "something else"}

    listed = statuspipe(env, "dead-letters", "list")
    assert "MessageSid is missing" in listed.stdout
    assert "something else" in listed.stdout
    again = statuspipe(env, "dead-letters", "replay", str(ids["5-0"]))
    assert again.returncode == 0
    assert f"{ids['5-0']}\tno such dead letter" in again.stdout
