"""Grouped alerts: one alert per (kind, code, window), counting distinct messages.

Failures join a group in the database (`alert_groups`, `alert_members`), so duplicate callbacks,
concurrent workers and retried tasks count each message once. A group is posted once its window
has closed; each sink that took it is recorded, so a sink that is down is retried alone, with
backoff, until it takes the alert: nothing is lost to an outage of Slack or the mail server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.models import AlertGroup, AlertMember
from workers.alerts.alert import Alert, window_bounds
from workers.alerts.sinks import Sink, SinkError

log = logging.getLogger(__name__)

SAMPLE_SIDS = 5
# A member that commits a moment after the window closed still makes it into the post.
POST_GRACE_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 300.0


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def join_group(
    session: Session,
    *,
    kind: str,
    code: int | None,
    message_sid: str,
    at: datetime,
    window_seconds: int,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> tuple[int, datetime, bool]:
    """Count `message_sid` in the group of (kind, code) for the window holding `at`.

    Returns (group id, when the group may be posted, whether this call created the group: its
    creator schedules the post). Idempotent per message."""
    start, end = window_bounds(at, window_seconds)
    group_id, created = open_group(
        session,
        kind=kind,
        code=code,
        window_start=start,
        window_end=end,
        summary=summary,
        detail=detail,
    )
    session.execute(
        _insert(session, AlertMember.__table__)
        .values(group_id=group_id, message_sid=message_sid)
        .on_conflict_do_nothing(index_elements=["group_id", "message_sid"])
    )
    return group_id, end + timedelta(seconds=POST_GRACE_SECONDS), created


def open_group(
    session: Session,
    *,
    kind: str,
    code: int | None,
    window_start: datetime,
    window_end: datetime,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> tuple[int, bool]:
    """The group of (kind, code, window_start), created if new: (its id, whether this call
    created it). An alert about no message in particular (a delivery-rate drop over a day) is a
    group without members; its `detail["count"]` is the count shown. The unique key makes it
    one alert however often, and by however many processes, it is raised."""
    groups = AlertGroup.__table__
    created = session.scalars(
        _insert(session, groups)
        .values(
            kind=kind,
            code=code or 0,
            window_start=window_start,
            window_end=window_end,
            summary=summary,
            detail=detail or {},
            state="open",
            sinks_done=[],
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["kind", "code", "window_start"])
        .returning(groups.c.id)
    ).first()
    if created is not None:
        return created, True
    existing = session.scalars(
        select(groups.c.id).where(
            groups.c.kind == kind,
            groups.c.code == (code or 0),
            groups.c.window_start == window_start,
        )
    ).one()
    return existing, False


def _alert(session: Session, group: AlertGroup) -> Alert:
    members = AlertMember.__table__.c
    count = session.scalar(select(func.count()).where(members.group_id == group.id)) or 0
    samples = session.scalars(
        select(members.message_sid)
        .where(members.group_id == group.id)
        .order_by(members.added_at, members.message_sid)
        .limit(SAMPLE_SIDS)
    ).all()
    return Alert(
        kind=group.kind,
        code=group.code or None,
        # An alert about no messages in particular (a delivery-rate drop) carries its own count.
        count=count or int(group.detail.get("count", 0)),
        sample_sids=list(samples),
        window_start=group.window_start,
        window_end=group.window_end,
        summary=group.summary,
        detail=dict(group.detail),
    )


def post_group(
    session: Session, group_id: int, sinks: Sequence[Sink], now: datetime | None = None
) -> float | None:
    """Post a closed group to every sink that has not taken it yet.

    Returns None when nothing is left to do (posted, or no such group), else the seconds to wait
    before calling again (the window is still open, or a sink failed). Run it in a transaction
    holding the group's row lock, so two workers never post one group twice."""
    now = now or datetime.now(UTC)
    group = session.scalars(
        select(AlertGroup).where(AlertGroup.id == group_id).with_for_update(skip_locked=True)
    ).first()
    if group is None or group.state == "sent":
        return None
    ready_at = group.window_end + timedelta(seconds=POST_GRACE_SECONDS)
    if now < ready_at:
        return (ready_at - now).total_seconds()
    alert = _alert(session, group)
    done = list(group.sinks_done)
    failures: list[SinkError] = []
    for sink in sinks:
        if sink.name in done:
            continue
        try:
            sink.send(alert)
        except SinkError as exc:
            if exc.permanent:
                # Retrying cannot help (the receiver refused the request itself): say so loudly
                # and count the sink as done, so the other sinks are not held back forever.
                log.error("alert %d: %s; not retried (fix the sink's settings)", group.id, exc)
                done.append(sink.name)
                continue
            failures.append(exc)
            continue
        done.append(sink.name)
    group.sinks_done = done
    if not failures:
        group.state = "sent"
        group.sent_at = now
        return None
    group.attempts += 1
    group.last_error = "; ".join(str(f) for f in failures)[:1000]
    waits = [f.retry_after for f in failures if f.retry_after]
    delay = max([min(2.0**group.attempts, MAX_BACKOFF_SECONDS), *waits])
    log.warning(
        "alert %d not taken by %s (attempt %d); retrying in %.0fs",
        group.id,
        ", ".join(f.sink for f in failures),
        group.attempts,
        delay,
    )
    return delay


def open_groups_due(session: Session, older_than: datetime) -> list[int]:
    """Groups never posted whose window closed before `older_than`: for the sweeper."""
    return list(
        session.scalars(
            select(AlertGroup.id)
            .where(AlertGroup.state == "open", AlertGroup.window_end < older_than)
            .order_by(AlertGroup.id)
            .limit(1000)
        )
    )
