"""What the daily delivery report counts, and how: pure functions, no I/O.

A message belongs to the calendar day of its `created_at` (its first callback, or its send) in
REPORT_TIMEZONE, and counts under its current status. The rates share one denominator, the
*settled* messages: those with a delivery outcome, `delivered` + `read` + `undelivered` +
`failed`. Messages still `sent` (no delivery receipt yet, and some carriers never send one),
`queued`, `sending`, `accepted` or `scheduled` are in flight, `canceled` ones were never sent:
none of them is in the denominator, so a missing receipt never counts as a failure; the share
of messages that left Twilio without a receipt is `no_receipt_rate` instead.

The SQL (shared/reports/daily.py) only groups and ranks; everything here turns its rows into
the report, so the arithmetic is tested without a database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.statuses import STATUS_RANKS, Ranks

DELIVERED = ("delivered", "read")  # a read receipt implies delivery
NOT_DELIVERED = ("undelivered", "failed")
SETTLED = DELIVERED + NOT_DELIVERED  # the denominator of every *_rate
FINAL = tuple(s for s, r in STATUS_RANKS.items() if r >= Ranks.FINAL)
REPORT_STATUSES = tuple(STATUS_RANKS)  # every known status, in rank order
UNKNOWN = "unknown"  # the counts key of messages whose callbacks carried no known status yet
PERCENTILES = (50, 95)
TOP_SENDERS = 20
RATE_DIGITS = 4
SECONDS_DIGITS = 3

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True)
class DayWindow:
    """One calendar day in the report's time zone, as the UTC instants [start, end)."""

    day: date
    start: datetime
    end: datetime


def parse_day(raw: str) -> date:
    """`YYYY-MM-DD` and nothing else (date.fromisoformat would also take `20260115`)."""
    problem = f"{raw!r} is not a date like 2026-01-15"
    if not _DATE.match(raw):
        raise ValueError(problem)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(problem) from None


def day_window(day: date, tz: ZoneInfo) -> DayWindow:
    """A day is 23 or 25 hours long where the clocks change; the zone database knows which."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return DayWindow(day, start, end)


def day_windows(first: date, count: int, tz: ZoneInfo) -> list[DayWindow]:
    """`count` consecutive days from `first`, oldest first: contiguous, so a query can bucket
    rows by comparing `created_at` with each day's end in turn."""
    return [day_window(first + timedelta(days=i), tz) for i in range(count)]


def last_complete_day(now: datetime, tz: ZoneInfo) -> date:
    """Yesterday in the report's time zone: the newest day no message can still join."""
    return now.astimezone(tz).date() - timedelta(days=1)


def percentile_rank(n: int, pct: int) -> int:
    """The nearest-rank percentile: the 1-based position ceil(n * pct / 100) in sorted order
    (p50 of 4 values is the 2nd, p95 of 20 the 19th). Integer arithmetic, as the SQL does it."""
    return max(1, (n * pct + 99) // 100)


def rate(part: int | float, whole: int | float) -> float | None:
    """`part / whole` rounded for people; None when there is nothing to divide by."""
    return round(part / whole, RATE_DIGITS) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), SECONDS_DIGITS)


@dataclass(frozen=True)
class Group:
    """One row of the daily query's grouped part: the messages of one day with the same status,
    error code and sender, and their sums."""

    day: int  # index of the day in the windows asked for
    status: str | None
    error_code: int | None
    sender: str | None
    messages: int
    ttd_sum: float  # seconds from created_at to status_updated_at, delivered and read only
    ttd_count: int
    callbacks: int  # callbacks stored, duplicates included
    statuses: int  # distinct statuses those callbacks carried
    reconciled: int  # messages whose final status only reconciliation brought


@dataclass(frozen=True)
class Ranked:
    """A value at one rank of a day's sorted values: the SQL returns the ranks of PERCENTILES."""

    part: str  # "ttd" (time to delivered) or "latency" (callback latency)
    day: int
    n: int  # how many values the day has
    rank: int  # 1-based
    value: float


def _percentiles(values: Sequence[Ranked]) -> dict[int, float | None]:
    if not values:
        return dict.fromkeys(PERCENTILES)
    n = values[0].n
    by_rank = {r.rank: r.value for r in values}
    return {p: _seconds(by_rank.get(percentile_rank(n, p))) for p in PERCENTILES}


def _by_error_code(
    groups: Sequence[Group], classify: Callable[[int | None], str]
) -> list[dict[str, Any]]:
    counts: dict[int | None, int] = {}
    for g in groups:
        if g.status in NOT_DELIVERED:
            counts[g.error_code] = counts.get(g.error_code, 0) + g.messages
    order = sorted(counts, key=lambda c: (-counts[c], c is None, c or 0))
    return [{"code": c, "count": counts[c], "action": classify(c)} for c in order]


def _by_sender(groups: Sequence[Group]) -> list[dict[str, Any]]:
    totals: dict[str | None, list[int]] = {}  # sender -> [total, delivered, settled]
    for g in groups:
        row = totals.setdefault(g.sender, [0, 0, 0])
        row[0] += g.messages
        if g.status in DELIVERED:
            row[1] += g.messages
        if g.status in SETTLED:
            row[2] += g.messages
    order = sorted(totals, key=lambda s: (-totals[s][0], s is None, s or ""))[:TOP_SENDERS]
    return [
        {
            "sender": s,
            "total": totals[s][0],
            "delivered": totals[s][1],
            "settled": totals[s][2],
            "delivery_rate": rate(totals[s][1], totals[s][2]),
        }
        for s in order
    ]


def day_report(
    window: DayWindow,
    timezone: str,
    groups: Sequence[Group],
    ranked: Sequence[Ranked],
    classify: Callable[[int | None], str],
) -> dict[str, Any]:
    """The report of one day from its grouped rows and ranked values."""
    counts = dict.fromkeys([*REPORT_STATUSES, UNKNOWN], 0)
    for g in groups:
        counts[g.status or UNKNOWN] = counts.get(g.status or UNKNOWN, 0) + g.messages
    total = sum(counts.values())
    settled = sum(counts[s] for s in SETTLED)
    final = sum(counts[s] for s in FINAL)
    ttd_count = sum(g.ttd_count for g in groups)
    callbacks = sum(g.callbacks for g in groups)
    ttd = _percentiles([r for r in ranked if r.part == "ttd"])
    latency = _percentiles([r for r in ranked if r.part == "latency"])
    return {
        "date": window.day.isoformat(),
        "timezone": timezone,
        "total": total,
        "counts": counts,
        "settled": settled,
        "delivery_rate": rate(counts["delivered"] + counts["read"], settled),
        "undelivered_rate": rate(counts["undelivered"], settled),
        "failed_rate": rate(counts["failed"], settled),
        "no_receipt_rate": rate(counts["sent"], settled + counts["sent"]),
        "avg_time_to_delivered_s": (
            _seconds(sum(g.ttd_sum for g in groups) / ttd_count) if ttd_count else None
        ),
        "p50_time_to_delivered_s": ttd[50],
        "p95_time_to_delivered_s": ttd[95],
        "callback_latency_p50_s": latency[50],
        "callback_latency_p95_s": latency[95],
        "duplicate_rate": rate(callbacks - sum(g.statuses for g in groups), callbacks),
        "callback_loss_rate": rate(sum(g.reconciled for g in groups), final),
        "by_error_code": _by_error_code(groups, classify),
        "by_sender": _by_sender(groups),
    }


def build_reports(
    windows: Sequence[DayWindow],
    timezone: str,
    groups: Iterable[Group],
    ranked: Iterable[Ranked],
    classify: Callable[[int | None], str],
) -> list[dict[str, Any]]:
    """One report per window, oldest first, from the rows of one daily query over them all."""
    by_day: list[list[Group]] = [[] for _ in windows]
    ranks: list[list[Ranked]] = [[] for _ in windows]
    for g in groups:
        by_day[g.day].append(g)
    for r in ranked:
        ranks[r.day].append(r)
    return [day_report(w, timezone, by_day[i], ranks[i], classify) for i, w in enumerate(windows)]
