"""The delivery rate of consecutive days, and the drop rule the alert applies to it.

`day_rates` is one query over the settled messages of a span of days (index-only, by the
(status, created_at) index: the days' other messages are never read). `judge_drop` compares
the last day with the trailing days before it; it is pure.

The baseline is the delivery rate of the trailing days' messages taken together (delivered over
settled across all of them), so a quiet Sunday weighs less than a busy Monday.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from shared.models import Message
from shared.reports.definitions import DELIVERED, SETTLED, DayWindow

BASELINE_DAYS = 7


@dataclass(frozen=True)
class DayRate:
    day: date
    settled: int  # delivered + read + undelivered + failed
    delivered: int  # delivered + read

    @property
    def rate(self) -> float | None:
        return self.delivered / self.settled if self.settled else None


def day_rates_statement(windows: Sequence[DayWindow]) -> Any:
    """One count per day and settled status: a UNION ALL of one index range per day (comparing
    every row with the day boundaries instead cost three times as much on the bench)."""
    m = Message.__table__.c
    parts = [
        select(literal(i).label("day"), m.status, func.count().label("n"))
        .where(m.status.in_(SETTLED), m.created_at >= w.start, m.created_at < w.end)
        .group_by(m.status)
        for i, w in enumerate(windows)
    ]
    return union_all(*parts)


def day_rates(session: Session, windows: Sequence[DayWindow]) -> list[DayRate]:
    """Settled and delivered messages of each window, oldest first."""
    query = day_rates_statement(windows)
    settled = [0] * len(windows)
    delivered = [0] * len(windows)
    for day, status, n in session.execute(query):
        settled[day] += n
        if status in DELIVERED:
            delivered[day] += n
    return [DayRate(w.day, settled[i], delivered[i]) for i, w in enumerate(windows)]


@dataclass(frozen=True)
class DropVerdict:
    """The drop check of one day: the numbers, whether to alert, and why (for people)."""

    day: date
    rate: float | None
    baseline: float | None
    threshold: float | None
    day_settled: int
    baseline_settled: int
    alert: bool
    reason: str

    def as_json(self) -> dict[str, object]:
        return {
            "date": self.day.isoformat(),
            "delivery_rate": None if self.rate is None else round(self.rate, 4),
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "threshold": None if self.threshold is None else round(self.threshold, 4),
            "day_settled": self.day_settled,
            "baseline_settled": self.baseline_settled,
            "alert": self.alert,
            "reason": self.reason,
        }


def judge_drop(
    day: DayRate, previous: Sequence[DayRate], ratio: float, min_messages: int
) -> DropVerdict:
    """Alert when the day's delivery rate is below `ratio` x the trailing days' rate, and both
    the day and the trailing days have at least `min_messages` settled messages."""
    settled = sum(p.settled for p in previous)
    baseline = sum(p.delivered for p in previous) / settled if settled else None
    threshold = None if baseline is None else ratio * baseline

    def verdict(alert: bool, reason: str) -> DropVerdict:
        return DropVerdict(
            day.day, day.rate, baseline, threshold, day.settled, settled, alert, reason
        )

    if day.settled < min_messages:
        return verdict(
            False,
            f"{day.day} has {day.settled} settled messages, fewer than DROP_ALERT_MIN_MESSAGES"
            f" ({min_messages})",
        )
    if settled < min_messages:
        return verdict(
            False,
            f"the {len(previous)} days before {day.day} have {settled} settled messages, fewer"
            f" than DROP_ALERT_MIN_MESSAGES ({min_messages})",
        )
    assert day.rate is not None
    assert baseline is not None
    assert threshold is not None
    shown = f"{day.rate:.2%} against a baseline of {baseline:.2%} (threshold {threshold:.2%})"
    if day.rate < threshold:
        return verdict(True, f"delivery rate dropped: {shown}")
    return verdict(False, f"no drop: {shown}")
