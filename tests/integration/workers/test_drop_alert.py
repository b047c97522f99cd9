"""The delivery-rate drop check on PostgreSQL and SQLite: it alerts on a constructed drop, once
however often it runs, and not on a flat week nor on low volume."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devtools.webhook_receiver import WebhookReceiver
from shared.bootstrap import error_code_map
from shared.config import load_settings
from shared.db import make_sessionmaker
from shared.models import AlertGroup
from tests import report_fixture as fixture
from workers.alerts.sinks import WebhookSink
from workers.reports.drop_alert import KIND, post_now, run_check

DAY8 = fixture.DAY8
# Any time on the 16th: the last complete day is the 15th.
NOW = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)


@pytest.fixture
def engine(any_db):
    return any_db


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def check(engine, **env):
    settings = load_settings(env)
    return run_check(make_sessionmaker(engine), settings, error_code_map(settings), NOW)


def alert_groups(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(AlertGroup))


def test_a_drop_alerts_once_however_often_the_check_runs(engine, receiver):
    fixture.load(engine)  # day 8: 10 of 15 delivered; the 7 days before: 29 of 35
    sinks = [WebhookSink(receiver.url + "/ok", timeout=5)]
    checks = [check(engine, DROP_ALERT_MIN_MESSAGES="10") for _ in range(3)]
    assert [c.verdict.alert for c in checks] == [True, True, True]
    assert [c.created for c in checks] == [True, False, False]
    assert len({c.group_id for c in checks}) == 1
    for c in checks:
        if c.created:
            assert post_now(make_sessionmaker(engine), c.group_id, sinks) is None
    assert alert_groups(engine) == 1
    (alert,) = receiver.alerts(kind=KIND)
    verdict = checks[0].verdict
    assert verdict.day == DAY8
    assert verdict.rate == pytest.approx(10 / 15)
    assert verdict.baseline == pytest.approx(29 / 35)
    assert verdict.threshold == pytest.approx(0.9 * 29 / 35)
    detail = alert["detail"]
    assert (detail["delivery_rate"], detail["baseline"], detail["threshold"]) == (
        0.6667,
        0.8286,
        0.7457,
    )
    assert alert["count"] == 15
    assert alert["code"] is None
    assert [c["code"] for c in detail["top_error_codes"]] == [30003, 30007, 30008, None]
    assert [s["sender"] for s in detail["top_senders"]] == [fixture.SENDER_A, fixture.SENDER_B]
    assert alert["window_start"] == "2026-01-15T00:00:00Z"
    assert "66.7%" in alert["summary"]
    assert "82.9%" in alert["summary"]


def test_a_new_check_after_a_restart_finds_the_alert_already_raised(engine):
    fixture.load(engine)
    assert check(engine, DROP_ALERT_MIN_MESSAGES="10").created
    engine.dispose()  # a new process: nothing but the database remembers
    again = check(engine, DROP_ALERT_MIN_MESSAGES="10")
    assert again.verdict.alert
    assert not again.created
    assert again.as_json()["already_alerted"] is True


def test_low_volume_does_not_alert(engine):
    fixture.load(engine)  # 15 settled on the day, 35 before: below the default of 100
    result = check(engine)
    assert not result.verdict.alert
    assert "DROP_ALERT_MIN_MESSAGES (100)" in result.verdict.reason
    assert alert_groups(engine) == 0


def test_a_low_volume_baseline_does_not_alert(engine):
    days = {DAY8 - timedelta(days=i): (9, 1) for i in range(1, 8)}  # 70 settled before
    days[DAY8] = (50, 100)  # a collapse, on 150 messages
    fixture.load_counts(engine, days)
    result = check(engine)
    assert not result.verdict.alert
    assert "days before 2026-01-15 have 70 settled" in result.verdict.reason
    assert alert_groups(engine) == 0


def test_a_flat_week_does_not_alert(engine):
    # 95% every day, the checked one included; the one before it dips to 80% (not checked).
    days: dict[date, tuple[int, int]] = {DAY8 - timedelta(days=i): (95, 5) for i in range(8)}
    days[DAY8 - timedelta(days=1)] = (80, 20)
    fixture.load_counts(engine, days)
    result = check(engine)
    assert not result.verdict.alert
    assert result.verdict.reason.startswith("no drop")
    assert result.verdict.rate == 0.95
    assert result.verdict.baseline == pytest.approx((95 * 6 + 80) / 700)
    assert alert_groups(engine) == 0


def test_a_drop_from_a_volume_baseline_alerts(engine):
    days = {DAY8 - timedelta(days=i): (95, 5) for i in range(1, 8)}
    days[DAY8] = (80, 20)  # 0.80 < 0.9 x 0.95 = 0.855
    fixture.load_counts(engine, days)
    result = check(engine)
    assert result.verdict.alert
    assert result.created
    assert alert_groups(engine) == 1
