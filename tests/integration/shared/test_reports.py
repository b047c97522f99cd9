"""The daily report against a hand-computed fixture (tests/report_fixture.py), through the API,
on PostgreSQL and on SQLite; day boundaries in a time zone other than UTC."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from sqlalchemy.orm import Session

from ingest.app import create_app
from shared.bootstrap import error_code_map
from shared.config import load_settings
from shared.reports.baseline import day_rates
from shared.reports.daily import daily_reports
from shared.reports.definitions import day_windows
from tests import report_fixture as fixture
from tests.twilio_fixtures import new_sid

TOKEN = "report-test-token"


@pytest.fixture
def database(any_database):
    return any_database


def api(url, **env):
    settings = load_settings(
        {"DATABASE_URL": url, "REDIS_URL": "redis://unused", "API_TOKEN": TOKEN,
         "SIGNATURE_MODE": "off", **env}
    )  # fmt: skip
    app = create_app(settings, redis_client=fakeredis.FakeRedis())
    client = app.test_client()

    def get(path):
        return client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})

    return get


def test_the_daily_report_through_the_api_is_the_hand_computed_one(database):
    url, engine = database
    fixture.load(engine)
    response = api(url)("/api/reports/daily?date=2026-01-15")
    assert response.status_code == 200
    assert response.get_json() == fixture.EXPECTED_DAY8


def test_the_days_before_and_the_baseline(database):
    _, engine = database
    fixture.load(engine)
    windows = day_windows(date(2026, 1, 8), 8, ZoneInfo("UTC"))
    codes = error_code_map(load_settings({}))
    with Session(engine) as session:
        reports = daily_reports(session, windows, "UTC", lambda c: codes.classify(c).spelling)
        rates = day_rates(session, windows)
    for report, rate in zip(reports[:-1], rates[:-1], strict=True):
        settled, delivered = fixture.EXPECTED_EARLIER[rate.day]
        assert (report["settled"], rate.settled, rate.delivered) == (settled, settled, delivered)
        assert report["counts"]["delivered"] == delivered
        assert report["avg_time_to_delivered_s"] == 10.0
        assert report["duplicate_rate"] == 0.0
    assert sum(r.settled for r in rates[:-1]) == fixture.BASELINE_SETTLED
    assert sum(r.delivered for r in rates[:-1]) == fixture.BASELINE_DELIVERED
    # Day 8 by the baseline query: 8 delivered + 2 read of 15 settled.
    assert (rates[-1].settled, rates[-1].delivered) == (15, 10)
    assert sum(r["total"] for r in reports) == 55


def test_without_a_date_the_report_is_of_yesterday(database):
    url, engine = database
    yesterday = datetime.now(UTC) - timedelta(days=1)
    fixture.store(engine, [fixture.callback(new_sid(), "delivered", yesterday, fixture.SENDER_A)])
    doc = api(url)("/api/reports/daily").get_json()
    assert doc["date"] == yesterday.date().isoformat()
    assert doc["counts"]["delivered"] == 1


@pytest.mark.parametrize("raw", ["2026-13-01", "15/01/2026", "20260115", "", "yesterday"])
def test_a_bad_date_is_422_naming_the_field(database, raw):
    url, _ = database
    response = api(url)(f"/api/reports/daily?date={raw}")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "date"


def test_the_report_needs_the_token(database):
    url, _ = database
    settings = load_settings(
        {"DATABASE_URL": url, "REDIS_URL": "redis://unused", "API_TOKEN": TOKEN,
         "SIGNATURE_MODE": "off"}
    )  # fmt: skip
    client = create_app(settings, redis_client=fakeredis.FakeRedis()).test_client()
    assert client.get("/api/reports/daily?date=2026-01-15").status_code == 401


def test_days_are_counted_in_the_report_time_zone(database):
    """New York is UTC-5 in January: its 2026-01-15 runs from 05:00 UTC to 05:00 UTC the next
    day. One message on each side of both boundaries, each with its own status."""
    url, engine = database
    placed = [
        ("delivered", datetime(2026, 1, 15, 4, 59, 59, tzinfo=UTC)),  # NY: the 14th
        ("undelivered", datetime(2026, 1, 15, 5, 0, 0, tzinfo=UTC)),  # NY: the 15th
        ("failed", datetime(2026, 1, 16, 4, 59, 59, tzinfo=UTC)),  # NY: the 15th
        ("sent", datetime(2026, 1, 16, 5, 0, 0, tzinfo=UTC)),  # NY: the 16th
    ]
    fixture.store(
        engine, [fixture.callback(new_sid(), s, at, fixture.SENDER_A) for s, at in placed]
    )

    def counts(day, zone):
        doc = api(url, REPORT_TIMEZONE=zone)(f"/api/reports/daily?date={day}").get_json()
        assert doc["timezone"] == zone
        return {status: n for status, n in doc["counts"].items() if n}

    assert counts("2026-01-14", "America/New_York") == {"delivered": 1}
    assert counts("2026-01-15", "America/New_York") == {"undelivered": 1, "failed": 1}
    assert counts("2026-01-16", "America/New_York") == {"sent": 1}
    assert counts("2026-01-15", "UTC") == {"delivered": 1, "undelivered": 1}
    assert counts("2026-01-16", "UTC") == {"failed": 1, "sent": 1}
