"""Acting on failures, end to end with real processes: gunicorn (send API and callbacks), the
drain worker, the `actions` worker, PostgreSQL, Redis, and the fake Twilio REST API that the
official twilio client reaches over HTTP. Every status callback is posted by the fake, signed
as Twilio signs it, to the StatusCallback statuspipe gave it."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from devtools.fake_twilio import FakeTwilio
from devtools.webhook_receiver import WebhookReceiver
from shared import worker_counters as wc
from shared.config import load_settings
from shared.models import Action, AlertGroup
from tests.conftest import API_TOKEN, make_env, procfile_command, start_web, start_worker
from tests.integration.test_pipeline import PUBLIC, http, send
from tests.twilio_fixtures import AUTH_TOKEN, callback_fields, new_sid
from tests.waiting import wait_for

ACCOUNT = "AC" + "5" * 32
SENDER = "+15005550001"
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}


@dataclass
class Stack:
    base: str
    fake: FakeTwilio
    alerts: WebhookReceiver
    env: dict[str, str]
    spawn: object
    actions: object = None

    def api(self, method: str, path: str, doc: object = None) -> tuple[int, dict]:
        body = json.dumps(doc).encode() if doc is not None else None
        status, raw, _ = http(method, self.base + path, body, AUTH)
        return status, json.loads(raw) if raw else {}

    def send(self, to: str = "+15005550006", body: str = "hello", **extra: object) -> dict:
        status, doc = self.api("POST", "/api/messages", {"to": to, "body": body,
                                                         "from": SENDER, **extra})  # fmt: skip
        assert status == 201, doc
        return doc

    def message(self, sid: str) -> dict:
        status, doc = self.api("GET", f"/api/messages/{sid}")
        assert status == 200, doc
        return doc

    def outcomes(self, sid: str) -> list[str | None]:
        return [a["outcome"] for a in self.message(sid)["actions"]]

    def creates(self) -> list:
        return self.fake.created

    def create_requests(self) -> list:
        return [r for r in self.fake.requests if r.method == "POST" and
                r.path.endswith("/Messages.json")]  # fmt: skip

    def start_actions(self, env: dict[str, str] | None = None) -> object:
        proc = self.spawn("actions", procfile_command("actions"), env or self.env)
        proc.wait_for_output("sweeping")
        return proc


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT, auth_token=AUTH_TOKEN) as f:
        yield f


@pytest.fixture
def alerts() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def actions_env(
    pg_url: str, redis_base_url: str, fake: FakeTwilio, alerts: WebhookReceiver, **extra: str
) -> dict[str, str]:
    """The stack's settings: the fake for Twilio, short waits, alerts to the receiver."""
    settings = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_API_BASE_URL": fake.base_url,
        "TWILIO_TIMEOUT": "1",
        "RETRY_BACKOFF_SECONDS": "0.2",
        "ALERT_WINDOW_SECONDS": "2",
        "ALERT_WEBHOOK_URL": alerts.url + "/hook",
        "ACTION_STALE_SECONDS": "2",
        "BATCH_LINGER_MS": "0",
    }
    return make_env(pg_url, redis_base_url, **{**settings, **extra})


@pytest.fixture
def env(pg_url, redis_base_url, redis_client, db, fake, alerts) -> dict[str, str]:
    return actions_env(pg_url, redis_base_url, fake, alerts)


@pytest.fixture
def stack(spawn, env, fake, alerts) -> Stack:
    _, base = start_web(spawn, env)
    fake.routes[PUBLIC] = base
    start_worker(spawn, env)
    s = Stack(base, fake, alerts, env, spawn)
    s.actions = s.start_actions()
    return s


def actions_of(db, sid: str) -> list[Action]:
    with Session(db) as session:
        return list(session.scalars(select(Action).where(Action.message_sid == sid)))


def settle(seconds: float = 1.5) -> None:
    """Give a wrong extra send the time to happen before asserting there was none."""
    time.sleep(seconds)


def test_a_transient_failure_is_resent_once_and_its_delivery_closes_the_chain(stack):
    sent = stack.send(body="your code is 123456")
    first = sent["sid"]
    assert sent["id"]
    assert sent["status"] == "queued"
    assert sent["retries"] == []
    stack.fake.send_status(first, "undelivered", 30003)

    wait_for(lambda: len(stack.creates()) == 2, what="the resend")
    resend = stack.creates()[1]
    request = stack.create_requests()[1]
    assert request.value("Attempt") == "2"
    assert (request.value("To"), request.value("From"), request.value("Body")) == (
        "+15005550006", SENDER, "your code is 123456")  # fmt: skip
    callback = request.value("StatusCallback")
    assert callback.startswith(f"{PUBLIC}/twilio/status?statuspipe_id=")
    assert "#rc=3&rp=ct,rt,5xx" in callback

    stack.fake.send_status(resend.sid, "delivered")
    wait_for(lambda: stack.message(resend.sid)["status"] == "delivered", what="delivery")
    original = stack.message(first)
    assert original["retries"] == [resend.sid]
    assert [(a["kind"], a["outcome"]) for a in original["actions"]] == [("retry", "sent")]
    later = stack.message(resend.sid)
    assert later["retry_of"] == first
    assert later["actions"] == []
    settle()
    assert len(stack.creates()) == 2


def test_the_same_failure_five_times_at_once_is_resent_once(stack, db):
    first = stack.send()["sid"]
    threads = [
        threading.Thread(target=stack.fake.send_status, args=(first, "undelivered", 30003))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: len(stack.creates()) == 2, what="the resend")
    settle()
    assert len(stack.creates()) == 2
    assert len(actions_of(db, first)) == 1
    events = {e["status"]: e["duplicate_count"] for e in stack.message(first)["events"]}
    assert events == {"undelivered": 4}  # all five stored: one event, four duplicates


def test_attempts_run_out_after_three_sends_and_one_alert_says_so(stack, redis_client):
    sid = stack.send()["sid"]
    for n in range(2, 4):
        stack.fake.send_status(sid, "undelivered", 30003)
        wait_for(lambda n=n: len(stack.creates()) == n, what=f"send {n}")
        sid = stack.creates()[-1].sid
    stack.fake.send_status(sid, "undelivered", 30003)
    alert = wait_for(lambda: stack.alerts.alerts(kind="retries_exhausted"), what="the alert")
    assert [a["count"] for a in alert] == [1]
    assert alert[0]["code"] == 30003
    assert sid in alert[0]["sample_sids"]
    settle()
    assert len(stack.creates()) == 3
    assert [a["outcome"] for a in stack.message(sid)["actions"]] == ["exhausted"]
    # Each finished action counted once, by kind and outcome, for /metrics.
    counted = wc.read(redis_client, load_settings(stack.env).stream_key)[wc.ACTIONS]
    assert counted == {("retry", "sent"): 2, ("retry", "exhausted"): 1}


def test_twilio_500_then_201_creates_exactly_one_resend(stack):
    first = stack.send()["sid"]
    stack.fake.fail_next_creates(500, times=1)
    stack.fake.send_status(first, "undelivered", 30003)
    wait_for(lambda: len(stack.creates()) == 2, what="the resend")
    settle()
    assert len(stack.creates()) == 2
    assert len(stack.create_requests()) == 3  # the original, the 500, the 201
    assert [a["outcome"] for a in stack.message(first)["actions"]] == ["sent"]


def test_a_create_that_times_out_is_settled_by_listing_never_sent_again(stack):
    first = stack.send()["sid"]
    stack.fake.hang_next_creates(2.5)  # past TWILIO_TIMEOUT=1, and the message is created
    stack.fake.send_status(first, "undelivered", 30003)
    wait_for(lambda: stack.outcomes(first) == ["sent"], timeout=30,
             what="the settled resend")  # fmt: skip
    [action] = stack.message(first)["actions"]
    assert "found by listing" in action["detail"]
    settle(3)
    assert len(stack.creates()) == 2
    assert stack.message(first)["retries"] == [stack.creates()[1].sid]


def test_an_actions_worker_killed_during_the_create_call_sends_no_second_message(stack):
    first = stack.send()["sid"]
    stack.fake.hang_next_creates(3)
    stack.fake.send_status(first, "undelivered", 30003)
    wait_for(lambda: len(stack.create_requests()) == 2, what="the resend call")
    stack.actions.stop(signal.SIGKILL)
    stack.start_actions()
    wait_for(lambda: stack.outcomes(first) == ["sent"], timeout=40,
             what="the settled resend")  # fmt: skip
    settle(2)
    assert len(stack.creates()) == 2


def test_a_failure_committed_by_a_drain_that_died_before_dispatch_is_still_acted_on(
    stack, db, redis_client
):
    """The drain commits the failure with its action, then dies before publishing the task:
    here the actions worker is down while the failure is stored and its task is purged, which
    leaves exactly that state. The sweeper of a new actions worker must act, once."""
    first = stack.send()["sid"]
    stack.actions.stop(signal.SIGKILL)
    stack.fake.send_status(first, "undelivered", 30003)
    wait_for(lambda: actions_of(db, first), what="the stored action")
    redis_client.delete("actions")  # the lost dispatch
    stack.start_actions()
    wait_for(lambda: len(stack.creates()) == 2, timeout=30, what="the swept resend")
    settle()
    assert len(stack.creates()) == 2


def test_a_filtered_burst_makes_a_few_alerts_counting_each_message_once(stack, db):
    sids = [new_sid() for _ in range(100)]
    for sid in sids:
        for _ in range(2):  # Twilio's duplicates
            fields = callback_fields(sid, "undelivered", ErrorCode="30007")
            assert send(stack.base, fields)[0] == 200

    def counted():
        got = stack.alerts.alerts(kind="error_code", code=30007)
        return got if sum(a["count"] for a in got) >= 100 else None

    got = wait_for(counted, timeout=40, what="the alerts")
    settle(3)
    got = stack.alerts.alerts(kind="error_code", code=30007)
    assert sum(a["count"] for a in got) == 100
    assert 1 <= len(got) <= 3
    assert all("30007" in text for text in stack.alerts.texts())
    with Session(db) as session:
        assert set(session.scalars(select(AlertGroup.state))) == {"sent"}


def test_an_opted_out_recipient_is_marked_and_the_next_send_is_refused(stack):
    number = "+15005550099"
    sid = stack.send(to=number)["sid"]
    stack.fake.send_status(sid, "undelivered", 21610)
    path = f"/api/contacts/{quote(number)}"
    wait_for(lambda: stack.api("GET", path)[0] == 200, what="the contact")
    status, contact = stack.api("GET", path)
    assert contact["state"] == "opted_out"
    assert contact["reason_code"] == 21610
    assert contact["number"] == number
    assert contact["source_sid"] == sid
    status, doc = stack.api("POST", "/api/messages", {"to": number, "body": "x", "from": SENDER})
    assert status == 409
    assert doc["error"]["field"] == "to"
    assert "opted_out" in doc["error"]["message"]
    assert len(stack.creates()) == 1
    assert stack.send(to=number, force=True)["sid"]


def test_a_message_statuspipe_did_not_send_is_skipped_not_resent(stack):
    sid = new_sid()
    assert send(stack.base, callback_fields(sid, "undelivered", ErrorCode="30003"))[0] == 200
    wait_for(lambda: stack.outcomes(sid) == ["skipped"], what="the action")
    [action] = stack.message(sid)["actions"]
    assert (action["kind"], action["outcome"]) == ("retry", "skipped")
    assert "body unknown" in action["detail"]
    settle()
    assert stack.creates() == []
