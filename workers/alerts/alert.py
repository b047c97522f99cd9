"""What an alert says, and how it reads: pure functions, no I/O.

An `Alert` is one grouped event (one kind and code per window). `slack_text` is what a person
reads at a glance, `as_json` the structured form sinks send and logs keep, and `from_json` turns
that form back into an `Alert`, so a task can take an alert as JSON primitives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.timefmt import iso_utc

MAX_SAMPLE_SIDS = 5
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Alert:
    """One alert: `count` events of `kind` (and `code`) between `window_start` and `window_end`.

    `detail` holds extra JSON-able fields; its `reason` (the error code's meaning) is shown next
    to the code. Only the first `MAX_SAMPLE_SIDS` sample sids are kept.
    """

    kind: str
    code: int | None
    count: int
    sample_sids: list[str]
    window_start: datetime
    window_end: datetime
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("window_start", "window_end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"Alert.{name} must be timezone-aware, got {value!r}")
        if self.window_end < self.window_start:
            raise ValueError("Alert.window_end is before window_start")
        if self.count < 0:
            raise ValueError(f"Alert.count must not be negative, got {self.count}")
        # The dataclass is frozen so an alert cannot change between sinks; this is its one
        # normalisation, done once here.
        object.__setattr__(self, "sample_sids", list(self.sample_sids)[:MAX_SAMPLE_SIDS])
        object.__setattr__(self, "summary", " ".join(self.summary.split()))


def window_bounds(at: datetime, window_seconds: int) -> tuple[datetime, datetime]:
    """The window holding `at`: [start, end) in UTC, aligned to multiples of it since the epoch.

    Every worker computes the same window for the same instant, whatever its start time.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"window_bounds needs a timezone-aware datetime, got {at!r}")
    if window_seconds < 1:
        raise ValueError(f"window_seconds must be at least 1, got {window_seconds}")
    width = timedelta(seconds=window_seconds)
    # timedelta arithmetic is exact to the microsecond, where float timestamps are not.
    start = EPOCH + ((at - EPOCH) // width) * width
    return start, start + width


def as_json(alert: Alert) -> dict[str, Any]:
    """The structured alert: JSON primitives only, times in ISO 8601 UTC."""
    return {
        "kind": alert.kind,
        "code": alert.code,
        "count": alert.count,
        "sample_sids": list(alert.sample_sids),
        "window_start": iso_utc(alert.window_start),
        "window_end": iso_utc(alert.window_end),
        "summary": alert.summary,
        "detail": dict(alert.detail),
    }


def from_json(doc: dict[str, Any]) -> Alert:
    """The inverse of `as_json`. Raises KeyError or ValueError on a document it did not write."""
    return Alert(
        kind=str(doc["kind"]),
        code=None if doc["code"] is None else int(doc["code"]),
        count=int(doc["count"]),
        sample_sids=[str(sid) for sid in doc["sample_sids"]],
        window_start=datetime.fromisoformat(doc["window_start"].replace("Z", "+00:00")),
        window_end=datetime.fromisoformat(doc["window_end"].replace("Z", "+00:00")),
        summary=str(doc["summary"]),
        detail=dict(doc.get("detail") or {}),
    )


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions); everything else is shown as is.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _window_text(start: datetime, end: datetime) -> str:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M:%S}–{end:%H:%M:%S} UTC"
    return f"{start:%Y-%m-%d %H:%M:%S} – {end:%Y-%m-%d %H:%M:%S} UTC"


def _code_text(alert: Alert) -> str:
    if alert.code is None:
        return ""
    reason = alert.detail.get("reason")
    return f" · code {alert.code}" + (f" ({reason})" if reason else "")


def slack_text(alert: Alert) -> str:
    """Slack-compatible text (mrkdwn): what, how many, which code and why, when, sample sids."""
    kind = alert.kind.replace("_", " ").capitalize()
    lines = [
        f":rotating_light: *{alert.summary}*",
        f"{kind} · count {alert.count}{_code_text(alert)}",
        f"Window: {_window_text(alert.window_start, alert.window_end)}",
    ]
    if alert.sample_sids:
        shown = ", ".join(f"`{sid}`" for sid in alert.sample_sids)
        more = alert.count - len(alert.sample_sids)
        lines.append(f"Sample: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    extra = {k: v for k, v in alert.detail.items() if k != "reason"}
    if extra:
        lines.append("Detail: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    return _slack_escape("\n".join(lines))
