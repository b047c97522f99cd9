"""The jobs of the `beat` role, and the Celery tasks the `actions` role runs for them.

`celery -A workers.actions_app beat` (exactly one, Procfile `beat`) only puts a task on the
`actions` queue every DROP_CHECK_INTERVAL and RECONCILE_INTERVAL; the actions workers run them.
Both jobs are safe to run twice: the drop alert is stored once per day, and reconciliation
holds a Redis lock per run and applies idempotently.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import shared_task
from redis.exceptions import LockError

from shared.config import ConfigError, Settings
from workers.actions.dispatch import ACTIONS_QUEUE

log = logging.getLogger(__name__)

DROP_CHECK = "statuspipe.drop_check"
RECONCILE = "statuspipe.reconcile"
RECONCILE_LOCK = "statuspipe:reconcile:lock"


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    # A task not taken by its next run is dropped, not piled up behind a stopped actions role.
    return {
        "drop-check": {
            "task": DROP_CHECK,
            "schedule": settings.drop_check_interval_seconds,
            "options": {"queue": ACTIONS_QUEUE, "expires": settings.drop_check_interval_seconds},
        },
        "reconcile": {
            "task": RECONCILE,
            "schedule": settings.reconcile_interval_seconds,
            "options": {"queue": ACTIONS_QUEUE, "expires": settings.reconcile_interval_seconds},
        },
    }


# Beat keeps its schedule in memory, not in a celerybeat-schedule file: the image's working
# directory is not writable by its user, and two beats on one machine (tests, `make run`) would
# share a file. A restart forgets when the jobs last ran, which costs nothing: both are
# idempotent, and the next run comes one interval after the start.
BEAT_SCHEDULER = "celery.beat:Scheduler"


@shared_task(name=DROP_CHECK, bind=True, ignore_result=True)
def drop_check_task(self: Any) -> None:
    from workers.actions.tasks import context, post_alert_task
    from workers.reports.drop_alert import run_check

    ctx = context(self.app.conf.statuspipe_settings)
    check = run_check(ctx.sessions, ctx.settings, ctx.codes, datetime.now(UTC))
    log.info("drop check: %s", check.verdict.reason)
    if check.created and check.group_id is not None:
        post_alert_task.apply_async((check.group_id,), queue=ACTIONS_QUEUE)


@shared_task(name=RECONCILE, bind=True, ignore_result=True)
def reconcile_task(self: Any) -> None:
    from workers.actions.tasks import context
    from workers.reconcile.candidates import Policy
    from workers.reconcile.run import reconcile, twilio_fetch

    ctx = context(self.app.conf.statuspipe_settings)
    settings = ctx.settings
    try:
        fetch = twilio_fetch(ctx.twilio)
    except ConfigError as exc:
        log.warning("reconcile skipped: %s", exc)
        return
    # Longer than a run can take at the configured rate, so a second run never overlaps one.
    hold = int(settings.reconcile_limit / settings.twilio_max_rps * 2 + 60)
    lock = ctx.redis.lock(RECONCILE_LOCK, timeout=hold, blocking=False)
    if not lock.acquire():
        log.info("reconcile skipped: another run holds the lock")
        return
    try:
        policy = Policy(
            after=timedelta(hours=settings.reconcile_after_hours),
            max_age=timedelta(days=settings.reconcile_max_age_days),
        )
        result = reconcile(
            ctx.sessions, fetch, ctx.limiter.acquire, policy, settings.reconcile_limit
        )
        log.info("reconcile: %s", result.as_json())
    finally:
        with suppress(LockError):  # expired meanwhile: nothing left to release
            lock.release()
