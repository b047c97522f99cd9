"""How statuspipe writes a time for people and machines: ISO 8601 in UTC with a `Z`, and as
whole microseconds since the epoch for exact comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def iso_utc(value: datetime) -> str:
    """`2026-01-15T12:00:00Z`. A naive value is taken as UTC: SQLite hands back naive datetimes,
    and everything statuspipe stores is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def epoch_micros(value: datetime) -> int:
    """Whole microseconds since the epoch, exactly (a float of seconds loses the last one)."""
    return (value - _EPOCH) // _MICROSECOND
