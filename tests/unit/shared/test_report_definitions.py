"""The report's pure parts: days in a time zone, nearest-rank percentiles, rates, the drop rule."""

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.reports.baseline import DayRate, judge_drop
from shared.reports.definitions import (
    Group,
    Ranked,
    day_report,
    day_window,
    day_windows,
    last_complete_day,
    parse_day,
    percentile_rank,
    rate,
)

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize("raw", ["2026-01-15", "2024-02-29"])
def test_a_date_is_yyyy_mm_dd(raw):
    assert parse_day(raw).isoformat() == raw


@pytest.mark.parametrize(
    "raw",
    ["20260115", "2026-1-15", "2026-02-30", "yesterday", "", "2026-01-15T00:00", " 2026-01-15"],
)
def test_anything_else_is_refused(raw):
    with pytest.raises(ValueError, match="date"):
        parse_day(raw)


@pytest.mark.parametrize(
    ("zone", "day", "start", "hours"),
    [
        ("UTC", date(2026, 1, 15), datetime(2026, 1, 15, tzinfo=UTC), 24),
        ("America/New_York", date(2026, 1, 15), datetime(2026, 1, 15, 5, tzinfo=UTC), 24),
        # Clocks go forward on 2026-03-08 and back on 2026-11-01 in New York.
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 5, tzinfo=UTC), 23),
        ("America/New_York", date(2026, 11, 1), datetime(2026, 11, 1, 4, tzinfo=UTC), 25),
        ("Asia/Kolkata", date(2026, 1, 15), datetime(2026, 1, 14, 18, 30, tzinfo=UTC), 24),
    ],
)
def test_a_day_is_midnight_to_midnight_in_the_zone(zone, day, start, hours):
    window = day_window(day, ZoneInfo(zone))
    assert window.start == start
    assert window.end - window.start == timedelta(hours=hours)


def test_consecutive_days_touch():
    windows = day_windows(date(2026, 3, 6), 4, NY)
    assert [w.day for w in windows] == [date(2026, 3, d) for d in (6, 7, 8, 9)]
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (datetime(2026, 1, 15, 12, tzinfo=UTC), "UTC", date(2026, 1, 14)),
        # 03:00 UTC is still the evening of the 14th in New York.
        (datetime(2026, 1, 15, 3, tzinfo=UTC), "America/New_York", date(2026, 1, 13)),
        (datetime(2026, 1, 15, 20, tzinfo=UTC), "Asia/Tokyo", date(2026, 1, 15)),
    ],
)
def test_the_last_complete_day_is_yesterday_in_the_zone(now, zone, expected):
    assert last_complete_day(now, ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    ("n", "pct", "rank"),
    [(1, 50, 1), (1, 95, 1), (2, 50, 1), (3, 50, 2), (4, 50, 2), (4, 95, 4), (10, 50, 5),
     (10, 95, 10), (20, 95, 19), (21, 95, 20), (100, 95, 95)],
)  # fmt: skip
def test_nearest_rank(n, pct, rank):
    assert percentile_rank(n, pct) == rank


def test_rates_are_rounded_fractions_and_none_without_a_denominator():
    assert rate(2, 3) == 0.6667
    assert rate(0, 5) == 0.0
    assert rate(0, 0) is None


def _classify(code):
    return "none" if code is None else f"action-{code}"


def test_a_day_without_messages_reports_zeros_and_no_rates():
    doc = day_report(day_window(date(2026, 1, 15), ZoneInfo("UTC")), "UTC", [], [], _classify)
    assert doc["total"] == 0
    assert set(doc["counts"].values()) == {0}
    for key in ("delivery_rate", "undelivered_rate", "failed_rate", "no_receipt_rate",
                "avg_time_to_delivered_s", "p50_time_to_delivered_s", "p95_time_to_delivered_s",
                "callback_latency_p50_s", "callback_latency_p95_s", "duplicate_rate",
                "callback_loss_rate"):  # fmt: skip
        assert doc[key] is None, key
    assert doc["by_error_code"] == []
    assert doc["by_sender"] == []


def test_sent_without_receipt_is_kept_out_of_the_denominator():
    groups = [
        Group(0, "delivered", None, "+1", 6, 60.0, 6, 12, 12, 0),
        Group(0, "undelivered", 30003, "+1", 2, 0.0, 0, 4, 4, 0),
        Group(0, "sent", None, "+1", 4, 0.0, 0, 4, 4, 0),
        Group(0, "canceled", None, "+1", 1, 0.0, 0, 1, 1, 0),
    ]
    doc = day_report(day_window(date(2026, 1, 15), ZoneInfo("UTC")), "UTC", groups, [], _classify)
    assert doc["total"] == 13
    assert doc["settled"] == 8
    assert doc["delivery_rate"] == 0.75  # 6 / 8: the 4 sent ones are not failures
    assert doc["no_receipt_rate"] == 0.3333  # 4 / (8 + 4)
    assert doc["by_error_code"] == [{"code": 30003, "count": 2, "action": "action-30003"}]


def test_percentiles_come_from_the_ranks_the_query_returned():
    # n = 20: p50 is rank 10, p95 rank 19.
    ranked = [Ranked("ttd", 0, 20, 10, 7.0), Ranked("ttd", 0, 20, 19, 31.5)]
    doc = day_report(day_window(date(2026, 1, 15), ZoneInfo("UTC")), "UTC", [], ranked, _classify)
    assert (doc["p50_time_to_delivered_s"], doc["p95_time_to_delivered_s"]) == (7.0, 31.5)
    assert doc["callback_latency_p50_s"] is None


D = date(2026, 1, 15)


def week(delivered: int, settled: int) -> list[DayRate]:
    return [DayRate(D - timedelta(days=i), settled, delivered) for i in range(7, 0, -1)]


@pytest.mark.parametrize(
    ("day", "previous", "alert", "says"),
    [
        # baseline 0.95, threshold 0.855
        (DayRate(D, 200, 190), week(190, 200), False, "no drop"),  # flat
        (DayRate(D, 200, 172), week(190, 200), False, "no drop"),  # 0.86: just above
        (DayRate(D, 200, 170), week(190, 200), True, "dropped"),  # 0.85: below
        (DayRate(D, 200, 171), week(190, 200), False, "no drop"),  # 0.855 exactly: not below
        (DayRate(D, 99, 10), week(190, 200), False, "fewer than DROP_ALERT_MIN_MESSAGES"),
        (DayRate(D, 200, 10), week(9, 10), False, "fewer than DROP_ALERT_MIN_MESSAGES"),
        (DayRate(D, 200, 10), [], False, "fewer than DROP_ALERT_MIN_MESSAGES"),
    ],
)
def test_the_drop_rule(day, previous, alert, says):
    verdict = judge_drop(day, previous, ratio=0.9, min_messages=100)
    assert verdict.alert is alert
    assert says in verdict.reason


def test_the_baseline_weighs_days_by_their_volume():
    previous = [DayRate(D - timedelta(days=2), 100, 100), DayRate(D - timedelta(days=1), 300, 0)]
    verdict = judge_drop(DayRate(D, 200, 100), previous, ratio=0.9, min_messages=1)
    assert verdict.baseline == 0.25  # 100 / 400, not the mean of 1.0 and 0.0
    assert verdict.threshold == pytest.approx(0.225)
    assert not verdict.alert
