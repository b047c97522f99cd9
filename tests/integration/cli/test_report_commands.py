"""`statuspipe report`, `drop-check` and `reconcile` as an operator runs them (subprocesses), on
PostgreSQL and SQLite, against the hand-computed fixture (tests/report_fixture.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from devtools.webhook_receiver import WebhookReceiver
from tests import report_fixture as fixture
from tests.integration.cli.runner import statuspipe

# The dev fallback (var/dev.env of `make run`) must never answer for these.
UNSET = ("REPORT_TIMEZONE", "DROP_ALERT_MIN_MESSAGES", "DROP_ALERT_RATIO", "ALERT_WEBHOOK_URL")


@pytest.fixture
def database(any_database):
    return any_database


def run(url: str, *args: str, **env: str):
    return statuspipe({"DATABASE_URL": url, **env}, *args, unset=UNSET)


def test_report_json_is_the_hand_computed_one(database):
    url, engine = database
    fixture.load(engine)
    result = run(url, "report", "--date", "2026-01-15", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == fixture.EXPECTED_DAY8


def test_report_of_several_days_as_csv_and_json(database):
    url, engine = database
    fixture.load(engine)
    result = run(url, "report", "--date", "2026-01-15", "--days", "8", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["date"] for r in rows] == [f"2026-01-{d:02d}" for d in range(8, 16)]
    assert [r["settled"] for r in rows] == ["5"] * 7 + ["15"]
    last = rows[-1]
    assert (last["total"], last["count_sent"], last["count_unknown"]) == ("20", "2", "1")
    assert (last["delivery_rate"], last["p95_time_to_delivered_s"]) == ("0.6667", "120.0")
    assert last["by_error_code"] == "30003:2;30007:1;30008:1;none:1"
    assert last["by_sender"] == f"{fixture.SENDER_A}:8/10;{fixture.SENDER_B}:2/5"
    as_json = run(url, "report", "--date", "2026-01-15", "--days", "8", "--format", "json")
    docs = json.loads(as_json.stdout)
    assert [d["date"] for d in docs] == [r["date"] for r in rows]
    assert docs[-1] == fixture.EXPECTED_DAY8


def test_report_table_for_people(database):
    url, engine = database
    fixture.load(engine)
    result = run(url, "report", "--date", "2026-01-15")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2026-01-15 (UTC): 20 messages, 15 settled" in out
    assert "delivery rate:     66.67%   undelivered 20.00%   failed 13.33%" in out
    assert "time to delivered: avg 52.5 s   p50 40 s   p95 120 s" in out
    assert "30003 x2 (retry)" in out
    assert f"{fixture.SENDER_B}: 7 messages, 2 delivered of 5 settled (40.00%)" in out


@pytest.mark.parametrize("bad", ["2026-02-30", "15.01.2026", "tomorrow"])
def test_report_refuses_a_bad_date(database, bad):
    url, _ = database
    result = run(url, "report", "--date", bad)
    assert result.returncode == 2
    assert "--date" in result.stderr


def test_drop_check_alerts_once_when_run_three_times(database):
    url, engine = database
    fixture.load(engine)
    with WebhookReceiver() as receiver:
        env = {"DROP_ALERT_MIN_MESSAGES": "10", "ALERT_WEBHOOK_URL": receiver.url + "/ok"}
        outputs = [run(url, "drop-check", "--date", "2026-01-15", **env) for _ in range(3)]
        assert [r.returncode for r in outputs] == [0, 0, 0], outputs[0].stderr
        assert outputs[0].stdout.splitlines()[-1] == "alerted"
        assert [r.stdout.splitlines()[-1] for r in outputs[1:]] == [
            "already alerted for this day"
        ] * 2
        assert "delivery rate 66.67% (15 settled); baseline 82.86%" in outputs[0].stdout
        (alert,) = receiver.alerts(kind="delivery_rate_drop")
    assert alert["detail"]["date"] == "2026-01-15"


def test_drop_check_says_why_it_does_not_alert(database):
    url, engine = database
    fixture.load(engine)
    result = run(url, "drop-check", "--date", "2026-01-15", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["alert"], doc["outcome"]) == (False, "no alert")
    assert (doc["day_settled"], doc["baseline_settled"]) == (15, 35)
    assert "DROP_ALERT_MIN_MESSAGES (100)" in doc["reason"]


def test_reconcile_recovers_a_lost_callback(database):
    from devtools.fake_twilio import FakeTwilio

    url, engine = database
    with FakeTwilio() as fake:
        sid = fake.add_message("+15005550006", status="sent")
        at = datetime.now(UTC) - timedelta(hours=13)
        fixture.store(engine, [fixture.callback(sid, "sent", at, fixture.SENDER_A)])
        fake.set_status(sid, "delivered")
        env = {"TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
               "TWILIO_API_BASE_URL": fake.base_url, "REDIS_URL": ""}  # fmt: skip
        first = run(url, "reconcile", "--json", **env)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout) == {
            "due": 1, "fetched": 1, "changed": 1, "settled": 1, "unknown_to_twilio": 0,
            "stopped": None,
        }  # fmt: skip
        second = run(url, "reconcile", **env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith("fetched 0 of 0 due; 0 changed")
