"""`statuspipe report` (the daily delivery report) and `statuspipe drop-check` (the drop alert's
check, by hand: for cron users and tests). What counts where: shared/reports/definitions.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from cli.database import open_database
from cli.settings import load
from shared.config import ConfigError, Settings
from shared.error_codes import ErrorCodeMap
from shared.reports.definitions import REPORT_STATUSES, UNKNOWN, parse_day

FORMATS = ("table", "json", "csv")


def _day(_ctx: click.Context, param: click.Parameter, raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return parse_day(raw)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _codes(settings: Settings) -> ErrorCodeMap:
    from shared.bootstrap import error_code_map

    try:
        return error_code_map(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def table_lines(report: dict[str, Any]) -> list[str]:
    """One day's report for people."""
    counts = report["counts"]
    shown = [s for s in (*REPORT_STATUSES, UNKNOWN) if counts.get(s)]
    lines = [
        f"{report['date']} ({report['timezone']}): {report['total']} messages, "
        f"{report['settled']} settled (the denominator of the rates)",
        "  by status:         " + (", ".join(f"{s} {counts[s]}" for s in shown) or "-"),
        f"  delivery rate:     {_percent(report['delivery_rate'])}"
        f"   undelivered {_percent(report['undelivered_rate'])}"
        f"   failed {_percent(report['failed_rate'])}"
        f"   sent without receipt {_percent(report['no_receipt_rate'])}",
        f"  time to delivered: avg {_secs(report['avg_time_to_delivered_s'])}"
        f"   p50 {_secs(report['p50_time_to_delivered_s'])}"
        f"   p95 {_secs(report['p95_time_to_delivered_s'])}",
        f"  callback latency:  p50 {_secs(report['callback_latency_p50_s'])}"
        f"   p95 {_secs(report['callback_latency_p95_s'])}",
        f"  duplicates:        {_percent(report['duplicate_rate'])} of callbacks"
        f"   callback loss {_percent(report['callback_loss_rate'])} of final statuses",
    ]
    codes = report["by_error_code"]
    lines.append(
        "  error codes:       "
        + (", ".join(f"{c['code'] or 'none'} x{c['count']} ({c['action']})" for c in codes) or "-")
    )
    lines.append("  senders:" + ("" if report["by_sender"] else "           -"))
    for s in report["by_sender"]:
        lines.append(
            f"    {s['sender'] or '(unknown)'}: {s['total']} messages, {s['delivered']} delivered"
            f" of {s['settled']} settled ({_percent(s['delivery_rate'])})"
        )
    return lines


CSV_FIELDS = (
    "date", "timezone", "total", *(f"count_{s}" for s in (*REPORT_STATUSES, UNKNOWN)),
    "settled", "delivery_rate", "undelivered_rate", "failed_rate", "no_receipt_rate",
    "avg_time_to_delivered_s", "p50_time_to_delivered_s", "p95_time_to_delivered_s",
    "callback_latency_p50_s", "callback_latency_p95_s", "duplicate_rate", "callback_loss_rate",
    "by_error_code", "by_sender",
)  # fmt: skip


def csv_text(reports: list[dict[str, Any]]) -> str:
    """One row per day; the two lists as `code:count` and `sender:delivered/settled` pairs."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        row = {k: r[k] for k in CSV_FIELDS if k in r}
        row.update({f"count_{s}": n for s, n in r["counts"].items()})
        row["by_error_code"] = ";".join(
            f"{c['code'] or 'none'}:{c['count']}" for c in r["by_error_code"]
        )
        row["by_sender"] = ";".join(
            f"{s['sender'] or 'unknown'}:{s['delivered']}/{s['settled']}" for s in r["by_sender"]
        )
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


@click.command()
@click.option(
    "--date", "day", callback=_day, metavar="YYYY-MM-DD", help="That day (default: yesterday)."
)
@click.option(
    "--days", type=click.IntRange(1, 366), help="The N days up to that day, oldest first."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def report(day: date | None, days: int | None, fmt: str) -> None:
    """The daily delivery report of a day in REPORT_TIMEZONE (default: yesterday, the last
    complete day). `--format json` prints what GET /api/reports/daily answers for the day (a
    list of them with --days)."""
    from shared.db import make_sessionmaker
    from shared.reports.daily import daily_reports
    from shared.reports.definitions import day_windows, last_complete_day

    settings = load("database_url")
    codes = _codes(settings)
    tz = ZoneInfo(settings.report_timezone)
    last = day or last_complete_day(datetime.now(UTC), tz)
    count = days or 1
    windows = day_windows(last - timedelta(days=count - 1), count, tz)
    sessions = make_sessionmaker(open_database(settings.database_url))
    with sessions() as session:
        reports = daily_reports(
            session, windows, settings.report_timezone, lambda c: codes.classify(c).spelling
        )
    if fmt == "json":
        click.echo(json.dumps(reports if days is not None else reports[0], indent=2))
    elif fmt == "csv":
        click.echo(csv_text(reports), nl=False)
    else:
        click.echo("\n\n".join("\n".join(table_lines(r)) for r in reports))


def _verdict_lines(doc: dict[str, Any]) -> list[str]:
    return [
        f"{doc['date']}: delivery rate {_percent(doc['delivery_rate'])}"
        f" ({doc['day_settled']} settled); baseline {_percent(doc['baseline'])} over the 7 days"
        f" before ({doc['baseline_settled']} settled); threshold {_percent(doc['threshold'])}",
        doc["reason"],
    ]


@click.command("drop-check")
@click.option("--date", "day", callback=_day, metavar="YYYY-MM-DD", help="Default: yesterday.")
@click.option("--json", "as_json", is_flag=True, help="The numbers as JSON.")
def drop_check(day: date | None, as_json: bool) -> None:
    """Compare a day's delivery rate with the 7 days before it, as the beat job does, and send
    the drop alert if it is due and not sent yet. Exits 0 whether it alerted or not."""
    from shared.db import make_sessionmaker
    from workers.alerts.sinks import sinks_from_settings
    from workers.reports.drop_alert import post_now, run_check

    settings = load("database_url")
    codes = _codes(settings)
    sessions = make_sessionmaker(open_database(settings.database_url))
    check = run_check(sessions, settings, codes, datetime.now(UTC), day)
    outcome = "no alert"
    if check.created and check.group_id is not None:
        retry_in = post_now(sessions, check.group_id, sinks_from_settings(settings))
        outcome = (
            "alerted"
            if retry_in is None
            else "alert stored; not every sink took it yet (the actions role retries it)"
        )
    elif check.group_id is not None:
        outcome = "already alerted for this day"
    doc = {**check.as_json(), "outcome": outcome}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for line in _verdict_lines(doc):
        click.echo(line)
    click.echo(outcome)
