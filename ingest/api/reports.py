"""GET /api/reports/daily?date=YYYY-MM-DD: the delivery report of one day in REPORT_TIMEZONE
(default: the last complete day). What counts where: shared/reports/definitions.py."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Response, current_app, jsonify, request

from ingest.api.blueprint import bp
from ingest.api.errors import api_error
from ingest.context import IngestContext
from shared.bootstrap import error_code_map
from shared.reports.daily import daily_reports
from shared.reports.definitions import day_window, last_complete_day, parse_day


@bp.get("/reports/daily")
def daily_report() -> Response:
    ctx: IngestContext = current_app.extensions["statuspipe"]
    settings = ctx.settings
    tz = ZoneInfo(settings.report_timezone)
    raw = request.args.get("date")
    if raw is None:
        day = last_complete_day(datetime.now(UTC), tz)
    else:
        try:
            day = parse_day(raw)
        except ValueError:
            return api_error(422, "invalid", "date must be a date like 2026-01-15", "date")
    codes = error_code_map(settings)
    with ctx.sessions() as session:
        (report,) = daily_reports(
            session, [day_window(day, tz)], settings.report_timezone,
            lambda code: codes.classify(code).spelling,
        )  # fmt: skip
    return jsonify(report)
