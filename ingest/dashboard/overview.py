"""What the dashboard shows, as one JSON document: read from PostgreSQL and Redis when asked.

The days and their delivery rates come from the daily report (shared/reports/), so the chart,
`GET /api/reports/daily` and `statuspipe report` never disagree on what "delivered" means.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.api.views import iso
from ingest.context import IngestContext
from ingest.metrics.pipeline import stream_state
from shared.bootstrap import error_code_map
from shared.models import Action, AlertGroup
from shared.reports.daily import daily_reports
from shared.reports.definitions import day_windows

DAYS = 14
TOP_ERROR_CODES = 8
LATEST = 10


def overview(ctx: IngestContext, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    settings = ctx.settings
    codes = error_code_map(settings)
    tz = ZoneInfo(settings.report_timezone)
    today = now.astimezone(tz).date()
    windows = day_windows(today - timedelta(days=DAYS - 1), DAYS, tz)
    with ctx.sessions() as session:
        reports = daily_reports(
            session, windows, settings.report_timezone, lambda c: codes.classify(c).spelling
        )
        actions = _latest_actions(session)
        alerts = _latest_alerts(session)
    latest = reports[-1]
    errors = [
        {**row, "reason": codes.classify(row["code"]).reason}
        for row in latest["by_error_code"][:TOP_ERROR_CODES]
    ]
    return {
        "generated_at": iso(now),
        "timezone": settings.report_timezone,
        "days": [
            {
                "date": r["date"],
                "delivery_rate": r["delivery_rate"],
                "settled": r["settled"],
                "total": r["total"],
            }
            for r in reports
        ],
        "today": {
            "date": latest["date"],
            "counts": {k: v for k, v in latest["counts"].items() if v},
            "total": latest["total"],
            "top_error_codes": errors,
        },
        "pipeline": _pipeline(ctx),
        "actions": actions,
        "alerts": alerts,
    }


def _pipeline(ctx: IngestContext) -> dict[str, Any]:
    settings = ctx.settings
    try:
        state = stream_state(ctx.redis, settings.stream_key, settings.consumer_group)
    except redis.RedisError as exc:
        return {"available": False, "error": f"Redis did not answer: {exc}"}
    return {
        "available": True,
        "backlog": state.backlog,
        "pending": state.pending,
        "lag_seconds": round(state.lag_seconds, 3),
    }


def _latest_actions(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(Action).order_by(Action.id.desc()).limit(LATEST)).all()
    return [
        {
            "id": a.id,
            "message_sid": a.message_sid,
            "kind": a.kind,
            "error_code": a.error_code,
            "state": a.state,
            "outcome": a.outcome,
            "detail": a.detail,
            "updated_at": iso(a.updated_at),
        }
        for a in rows
    ]


def _latest_alerts(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(AlertGroup).order_by(AlertGroup.id.desc()).limit(LATEST)).all()
    return [
        {
            "id": g.id,
            "kind": g.kind,
            "code": g.code or None,
            "summary": g.summary,
            "state": g.state,
            "window_end": iso(g.window_end),
            "sent_at": iso(g.sent_at),
        }
        for g in rows
    ]
