"""The delivery-rate drop check: the last complete day against the 7 days before it.

`check_drop` judges a day (shared/reports/baseline.py) and, on a drop, opens the day's alert in
the grouped alert store, keyed (kind `delivery_rate_drop`, code 0, the day's start): the key
makes it one alert per breached day however often the job runs, restarts included. The caller
commits, then posts it to the sinks (the `post_alert` task, or `post_now` from the CLI); the
actions role's sweeper posts one whose post was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db import session_scope
from shared.error_codes import ErrorCodeMap
from shared.reports.baseline import BASELINE_DAYS, DropVerdict, day_rates, judge_drop
from shared.reports.daily import daily_reports
from shared.reports.definitions import day_windows, last_complete_day
from workers.alerts.groups import open_group, post_group
from workers.alerts.sinks import Sink

KIND = "delivery_rate_drop"
TOP = 5


@dataclass(frozen=True)
class DropCheck:
    verdict: DropVerdict
    group_id: int | None  # the day's alert, when the day is a drop
    created: bool  # this check raised it (the earlier ones found it raised)
    top_error_codes: list[dict[str, Any]]
    top_senders: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.verdict.as_json(),
            "alerted": self.created,
            "already_alerted": self.group_id is not None and not self.created,
            "top_error_codes": self.top_error_codes,
            "top_senders": self.top_senders,
        }


def _summary(verdict: DropVerdict, ratio: float) -> str:
    assert verdict.rate is not None
    assert verdict.baseline is not None
    return (
        f"Delivery rate {verdict.rate:.1%} on {verdict.day} is below {ratio:g} x the"
        f" {BASELINE_DAYS}-day baseline of {verdict.baseline:.1%}"
    )


def check_drop(
    session: Session,
    settings: Settings,
    codes: ErrorCodeMap,
    now: datetime,
    day: date | None = None,
) -> DropCheck:
    """Judge `day` (default: the last complete day in REPORT_TIMEZONE); on a drop, open its
    alert in the caller's transaction."""
    tz = ZoneInfo(settings.report_timezone)
    day = day or last_complete_day(now, tz)
    windows = day_windows(day - timedelta(days=BASELINE_DAYS), BASELINE_DAYS + 1, tz)
    rates = day_rates(session, windows)
    verdict = judge_drop(
        rates[-1], rates[:-1], settings.drop_alert_ratio, settings.drop_alert_min_messages
    )
    if not verdict.alert:
        return DropCheck(verdict, None, False, [], [])
    (report,) = daily_reports(
        session, windows[-1:], settings.report_timezone, lambda c: codes.classify(c).spelling
    )
    top_codes = report["by_error_code"][:TOP]
    top_senders = report["by_sender"][:TOP]
    window = windows[-1]
    group_id, created = open_group(
        session,
        kind=KIND,
        code=0,
        window_start=window.start,
        window_end=window.end,
        summary=_summary(verdict, settings.drop_alert_ratio),
        detail={
            **{k: v for k, v in verdict.as_json().items() if k != "alert"},
            "timezone": settings.report_timezone,
            "ratio": settings.drop_alert_ratio,
            "count": verdict.day_settled,
            "top_error_codes": top_codes,
            "top_senders": top_senders,
        },
    )
    return DropCheck(verdict, group_id, created, top_codes, top_senders)


def run_check(
    sessions: sessionmaker[Session],
    settings: Settings,
    codes: ErrorCodeMap,
    now: datetime,
    day: date | None = None,
) -> DropCheck:
    """`check_drop` in its own transaction, committed before anyone posts the alert."""
    with session_scope(sessions) as session:
        return check_drop(session, settings, codes, now, day)


def post_now(sessions: sessionmaker[Session], group_id: int, sinks: list[Sink]) -> float | None:
    """Post the alert at once (the CLI); returns the wait before a retry when a sink failed."""
    with session_scope(sessions) as session:
        return post_group(session, group_id, sinks)
