from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.alerts.alert import Alert, as_json, from_json, slack_text, window_bounds

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)

FILTERED = Alert(
    kind="error_code",
    code=30007,
    count=12,
    sample_sids=["SM001", "SM002", "SM003"],
    window_start=T0,
    window_end=T1,
    summary="12 messages filtered by the carrier",
    detail={"reason": "Message filtered", "status": "undelivered"},
)
EXHAUSTED = Alert(
    kind="retries_exhausted",
    code=30003,
    count=2,
    sample_sids=["SM9", "SM8"],
    window_start=T0,
    window_end=T1,
    summary="2 messages gave up after 3 attempts",
    detail={"reason": "Unreachable destination handset", "attempts": 3},
)
RATE_DROP = Alert(
    kind="delivery_rate_drop",
    code=None,
    count=400,
    sample_sids=[],
    window_start=datetime(2024, 5, 1, 23, 0, tzinfo=UTC),
    window_end=datetime(2024, 5, 2, 1, 0, tzinfo=UTC),
    summary="Delivery rate fell to 61% (baseline 97%)",
    detail={"rate": 0.61, "baseline": 0.97},
)
MARKUP = Alert(
    kind="error_code",
    code=21610,
    count=1,
    sample_sids=["SM<1>"],
    window_start=T0,
    window_end=T1,
    summary="Opt-out <STOP> & unsubscribed",
    detail={"reason": "Attempt to send to unsubscribed recipient"},
)


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (
            FILTERED,
            ":rotating_light: *12 messages filtered by the carrier*\n"
            "Error code · count 12 · code 30007 (Message filtered)\n"
            "Window: 2024-05-01 12:00:00–12:01:00 UTC\n"
            "Sample: `SM001`, `SM002`, `SM003` (+9 more)\n"
            "Detail: status=undelivered",
        ),
        (
            EXHAUSTED,
            ":rotating_light: *2 messages gave up after 3 attempts*\n"
            "Retries exhausted · count 2 · code 30003 (Unreachable destination handset)\n"
            "Window: 2024-05-01 12:00:00–12:01:00 UTC\n"
            "Sample: `SM9`, `SM8`\n"
            "Detail: attempts=3",
        ),
        (
            RATE_DROP,
            ":rotating_light: *Delivery rate fell to 61% (baseline 97%)*\n"
            "Delivery rate drop · count 400\n"
            "Window: 2024-05-01 23:00:00 – 2024-05-02 01:00:00 UTC\n"
            "Detail: baseline=0.97, rate=0.61",
        ),
        (
            MARKUP,
            ":rotating_light: *Opt-out &lt;STOP&gt; &amp; unsubscribed*\n"
            "Error code · count 1 · code 21610 (Attempt to send to unsubscribed recipient)\n"
            "Window: 2024-05-01 12:00:00–12:01:00 UTC\n"
            "Sample: `SM&lt;1&gt;`",
        ),
    ],
)
def test_slack_text(alert, expected):
    assert slack_text(alert) == expected


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (
            FILTERED,
            {
                "kind": "error_code",
                "code": 30007,
                "count": 12,
                "sample_sids": ["SM001", "SM002", "SM003"],
                "window_start": "2024-05-01T12:00:00Z",
                "window_end": "2024-05-01T12:01:00Z",
                "summary": "12 messages filtered by the carrier",
                "detail": {"reason": "Message filtered", "status": "undelivered"},
            },
        ),
        (
            RATE_DROP,
            {
                "kind": "delivery_rate_drop",
                "code": None,
                "count": 400,
                "sample_sids": [],
                "window_start": "2024-05-01T23:00:00Z",
                "window_end": "2024-05-02T01:00:00Z",
                "summary": "Delivery rate fell to 61% (baseline 97%)",
                "detail": {"rate": 0.61, "baseline": 0.97},
            },
        ),
    ],
)
def test_as_json(alert, expected):
    assert as_json(alert) == expected


@pytest.mark.parametrize("alert", [FILTERED, EXHAUSTED, RATE_DROP, MARKUP])
def test_from_json_reverses_as_json(alert):
    assert from_json(as_json(alert)) == alert


def test_times_in_another_zone_are_written_in_utc():
    plus2 = timezone(timedelta(hours=2))
    alert = Alert(
        "error_code",
        30007,
        1,
        ["SM1"],
        datetime(2024, 5, 1, 14, 0, tzinfo=plus2),
        datetime(2024, 5, 1, 14, 1, tzinfo=plus2),
        "s",
    )
    assert as_json(alert)["window_start"] == "2024-05-01T12:00:00Z"
    assert "Window: 2024-05-01 12:00:00–12:01:00 UTC" in slack_text(alert)


def test_alert_keeps_five_sample_sids_and_one_summary_line():
    alert = Alert("error_code", 30007, 9, [f"SM{i}" for i in range(9)], T0, T1, "two\nlines  here")
    assert alert.sample_sids == ["SM0", "SM1", "SM2", "SM3", "SM4"]
    assert alert.summary == "two lines here"
    assert "(+4 more)" in slack_text(alert)


@pytest.mark.parametrize(
    ("start", "end", "count", "message"),
    [
        (datetime(2024, 5, 1, 12, 0), T1, 1, "window_start must be timezone-aware"),
        (T0, datetime(2024, 5, 1, 12, 1), 1, "window_end must be timezone-aware"),
        (T1, T0, 1, "window_end is before window_start"),
        (T0, T1, -1, "count must not be negative"),
    ],
)
def test_alert_refuses_an_impossible_value(start, end, count, message):
    with pytest.raises(ValueError, match=message):
        Alert("error_code", 30007, count, [], start, end, "s")


@pytest.mark.parametrize(
    ("at", "window", "start", "end"),
    [
        (datetime(2024, 5, 1, 12, 0, 59, 999999, tzinfo=UTC), 60, T0, T1),
        (T0, 60, T0, T1),
        (T1, 60, T1, T1 + timedelta(minutes=1)),
        (
            datetime(2024, 5, 1, 12, 7, 30, tzinfo=UTC),
            300,
            datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
            datetime(2024, 5, 1, 12, 10, tzinfo=UTC),
        ),
        (
            datetime(2024, 5, 1, 23, 59, tzinfo=UTC),
            3600,
            datetime(2024, 5, 1, 23, 0, tzinfo=UTC),
            datetime(2024, 5, 2, 0, 0, tzinfo=UTC),
        ),
        # Aligned to the epoch, not to the local hour: 14:00:30+02:00 is 12:00:30 UTC.
        (datetime(2024, 5, 1, 14, 0, 30, tzinfo=timezone(timedelta(hours=2))), 60, T0, T1),
        # A window that does not divide a day: 7 s windows since the epoch.
        (
            datetime(1970, 1, 1, 0, 0, 20, tzinfo=UTC),
            7,
            datetime(1970, 1, 1, 0, 0, 14, tzinfo=UTC),
            datetime(1970, 1, 1, 0, 0, 21, tzinfo=UTC),
        ),
    ],
)
def test_window_bounds(at, window, start, end):
    got = window_bounds(at, window)
    assert got == (start, end)
    assert got[0].tzinfo == UTC
    assert got[0] <= at < got[1]


@pytest.mark.parametrize(
    ("at", "window", "message"),
    [
        (datetime(2024, 5, 1, 12, 0), 60, "needs a timezone-aware datetime"),
        (T0, 0, "window_seconds must be at least 1"),
    ],
)
def test_window_bounds_refuses_naive_times_and_empty_windows(at, window, message):
    with pytest.raises(ValueError, match=message):
        window_bounds(at, window)
