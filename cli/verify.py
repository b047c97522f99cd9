"""`statuspipe verify`: prove that every callback the ingress acknowledged is stored, dead-lettered
with a reason, or still queued in Redis (workers/verify). Exit 0 when it is, 1 with a report
naming what is not."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from cli.database import open_database
from cli.settings import load

if TYPE_CHECKING:
    from workers.verify import Verification
    from workers.verify.compare import Run

_AGO = re.compile(r"^(\d+)([mhd])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def parse_time(text: str) -> float:
    """ISO 8601 (a date, or a date and time; UTC unless it says otherwise) or a duration ago
    (90m, 24h, 3d), as epoch seconds."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:
        return time.time() - int(ago.group(1)) * _UNIT[ago.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO 8601 time (2026-11-30T14:00Z) nor a duration ago (24h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.command()
@click.option("--since", help="Start of the window: ISO 8601 or a duration ago (default 24h).")
@click.option("--until", help="End of the window: ISO 8601 or a duration ago (default now).")
def verify(since: str | None, until: str | None) -> None:
    """Check that every acknowledged callback is stored, dead-lettered or still queued."""
    import redis

    from workers.verify import verify as run_verify

    settings = load("database_url", "redis_url")
    start = parse_time(since) if since else None
    end = parse_time(until) if until else None
    if start is not None and end is not None and start >= end:
        raise click.BadParameter("--since must be before --until")
    engine = open_database(settings.database_url)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30)
    try:
        report = run_verify(settings, client, engine, start, end)
    except redis.RedisError as exc:
        raise click.ClickException(f"cannot read the ledger from Redis: {exc}") from None
    finally:
        engine.dispose()
    _print(report)
    if not report.ok:
        raise SystemExit(1)


def _print(report: Verification) -> None:
    echo = click.echo
    echo(f"window {_iso(report.since)} to {_iso(report.until)} (minutes of the ingress's clock)")
    if report.clamped_since:
        echo("  (the ledger keeps LEDGER_RETENTION_HOURS only: the window starts where it does)")
    echo(
        f"acknowledged {report.acknowledged:,}: stored {report.stored:,},"
        f" dead-lettered {report.dead:,} (each with a reason), still queued in Redis"
        f" {report.queued:,}"
    )
    if report.balanced:
        echo(
            f"differences that cancel out across minutes: {report.balanced:,} (retries filed"
            " under their first callback's minute)"
        )
    for finding in report.missing:
        n = finding.named
        echo(
            f"MISSING {n.copies} x {n.sid} {n.status} (acknowledged in"
            f" {_minutes(n.runs)}): {finding.note}"
        )
    for finding in [f for f in report.findings if f.explained]:
        n = finding.named
        echo(f"accounted {n.copies} x {n.sid} {n.status}: {finding.note}")
    for finding in report.extra:
        n = finding.named
        echo(f"extra {-n.copies} x {n.sid} {n.status} ({_minutes(n.runs)}): {finding.note}")
    for run in report.unnamed:
        count = run.difference[0]
        count = count - (1 << 64) if count >= 1 << 63 else count
        if run.ledger_empty:
            what = "stored, not in the ledger"
        else:
            what = "extra" if count < 0 else "MISSING"
        echo(
            f"{what}: {count:+,} callbacks in {_minutes([run])}, cell {run.cell}, of more than"
            " one message, so not named (the candidates: the messages whose callbacks Twilio"
            " sent in those minutes)"
        )
    if report.disagreeing_minutes and not report.ok:
        echo("minutes that disagree (acknowledged / accounted for):")
        for bucket, acked, accounted in report.disagreeing_minutes[:50]:
            echo(f"  {_iso(bucket)}  {acked:,} / {accounted:,}")
    if report.ok:
        echo("OK: every acknowledged callback is stored, dead-lettered or still queued")
    else:
        echo("NOT OK: acknowledged callbacks are missing (see above)")


def _minutes(runs: list[Run]) -> str:
    """Where a difference appeared: the first minute of its run (it stays open after that)."""
    return f"the minute from {_iso(min(r.first for r in runs))}"
