"""The `beat` and `actions` roles of the Procfile, as deployed: beat puts the drop check and
reconciliation on the actions queue, the actions role runs them; one alert per breached day
however many times the check runs, and a lost callback recovered without anyone asking."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from devtools.fake_twilio import FakeTwilio
from devtools.webhook_receiver import WebhookReceiver
from shared.models import Message
from tests import report_fixture as fixture
from tests.conftest import make_env, procfile_command
from tests.waiting import wait_for


@pytest.fixture
def alerts() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as running:
        yield running


def test_beat_schedules_the_drop_check_and_reconciliation(
    spawn, pg_url, redis_base_url, redis_client, db, alerts, fake
):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    days = {yesterday - timedelta(days=i): (95, 5) for i in range(1, 8)}
    days[yesterday] = (60, 40)  # 0.60 < 0.9 x 0.95
    fixture.load_counts(db, days)
    lost = fake.add_message("+15005550006", status="sent")
    at = datetime.now(UTC) - timedelta(hours=13)
    fixture.store(db, [fixture.callback(lost, "sent", at, fixture.SENDER_A)])
    fake.set_status(lost, "delivered")
    env = make_env(
        pg_url,
        redis_base_url,
        DROP_CHECK_INTERVAL="1",
        RECONCILE_INTERVAL="1",
        DROP_ALERT_MIN_MESSAGES="10",
        ALERT_WEBHOOK_URL=alerts.url + "/hook",
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_API_BASE_URL=fake.base_url,
        TWILIO_MAX_RPS="100",
    )
    actions = spawn("actions", procfile_command("actions"), env)
    actions.wait_for_output("sweeping")
    beat = spawn("beat", procfile_command("beat"), env)
    beat.wait_for_output("beat: Starting")

    def status() -> str | None:
        with Session(db) as session:
            return session.get(Message, lost).status

    assert wait_for(lambda: status() == "delivered", 60, "reconciliation by the beat job")
    wait_for(lambda: alerts.alerts(kind="delivery_rate_drop"), 60, "the drop alert")
    # The check keeps running every second; it must not alert again.
    wait_for(
        lambda: actions.output().count("drop check: delivery rate dropped") >= 4,
        60,
        "more runs of the drop check",
    )
    (alert,) = alerts.alerts(kind="delivery_rate_drop")
    assert alert["detail"]["date"] == yesterday.isoformat()
    assert alert["detail"]["delivery_rate"] == 0.6
