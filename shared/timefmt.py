"""How statuspipe writes a time for people and machines: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(value: datetime) -> str:
    """`2026-01-15T12:00:00Z`. A naive value is taken as UTC: SQLite hands back naive datetimes,
    and everything statuspipe stores is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
