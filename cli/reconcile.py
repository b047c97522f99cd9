"""`statuspipe reconcile [--limit N]`: one reconciliation run by hand, as the beat job runs it
(workers/reconcile/run.py): fetch from Twilio the messages whose callbacks may be lost."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import click

from cli.database import open_database
from cli.settings import load
from shared.config import ConfigError


class Pacer:
    """TWILIO_MAX_RPS for this process alone, when no REDIS_URL names the fleet's counter."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_at = 0.0

    def acquire(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


@click.command()
@click.option("--limit", type=click.IntRange(min=1), help="Default: RECONCILE_LIMIT.")
@click.option("--json", "as_json", is_flag=True, help="The counts as JSON.")
def reconcile(limit: int | None, as_json: bool) -> None:
    """Fetch from Twilio the messages still not final RECONCILE_AFTER_HOURS after their last
    status, and those flagged needs_reconcile; store what Twilio says. Stops at a 429 (the
    rest wait for the next run) and exits 0; exits 1 on a setting or database error."""
    import redis

    from shared.db import make_sessionmaker
    from shared.twilio_client import make_twilio_client
    from workers.actions.rate_limit import RateLimiter
    from workers.reconcile.candidates import Policy
    from workers.reconcile.run import reconcile as run
    from workers.reconcile.run import twilio_fetch

    settings = load("database_url")
    try:
        client = make_twilio_client(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    acquire = (
        RateLimiter(redis.Redis.from_url(settings.redis_url), settings.twilio_max_rps).acquire
        if settings.redis_url
        else Pacer(settings.twilio_max_rps).acquire
    )
    sessions = make_sessionmaker(open_database(settings.database_url))
    policy = Policy(
        after=timedelta(hours=settings.reconcile_after_hours),
        max_age=timedelta(days=settings.reconcile_max_age_days),
    )
    result = run(sessions, twilio_fetch(client), acquire, policy, limit or settings.reconcile_limit)
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    click.echo(
        f"fetched {result.fetched} of {result.due} due; {len(result.changed)} changed,"
        f" {result.settled} brought to a final status (lost callbacks);"
        f" {result.unknown_to_twilio} unknown to Twilio"
    )
    if result.stopped:
        click.echo(f"stopped early: {result.stopped}; the rest wait for the next run")
