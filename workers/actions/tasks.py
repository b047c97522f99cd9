"""The Celery tasks of the `actions` role: thin shells over perform.py and alerts/groups.py.

Arguments are ids; every task reloads its row and locks it, so running one twice is harmless.
What a run leaves for later (a resend's backoff, an alert's window) is scheduled here with a
countdown; the sweeper covers a schedule that is lost.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from typing import Any

import redis
from celery import shared_task

from shared import worker_counters as wc
from shared.config import Settings
from shared.db import session_scope
from workers.actions.context import ActionContext
from workers.actions.dispatch import ACTIONS_QUEUE, PERFORM_ACTION, PERFORM_ACTIONS, POST_ALERT
from workers.actions.perform import Next, perform_action
from workers.alerts.groups import post_group

log = logging.getLogger(__name__)


@functools.cache
def context(settings: Settings) -> ActionContext:
    """One per process and settings: engines, clients and sinks are reused across tasks."""
    return ActionContext.build(settings)


def _ctx(task: Any) -> ActionContext:
    return context(task.app.conf.statuspipe_settings)


def _schedule(nxt: Next, action_id: int) -> None:
    if nxt.run_again_in is not None:
        perform_action_task.apply_async(
            (action_id,), countdown=max(nxt.run_again_in, 0.0), queue=ACTIONS_QUEUE
        )
    now = datetime.now(UTC)
    for group_id, not_before in nxt.post_alerts:
        countdown = max((not_before - now).total_seconds(), 0.0)
        post_alert_task.apply_async((group_id,), countdown=countdown, queue=ACTIONS_QUEUE)


@shared_task(name=PERFORM_ACTIONS, bind=True, acks_late=True, ignore_result=True)
def perform_actions_task(self: Any, action_ids: list[int]) -> None:
    """Fan one drained batch's actions out, so the role's threads carry them in parallel."""
    for action_id in action_ids:
        perform_action_task.apply_async((action_id,), queue=ACTIONS_QUEUE)


def _count(ctx: ActionContext, finished: tuple[str, str] | None) -> None:
    """Add a finished action to the workers' counters (exported by the ingress's /metrics)."""
    if finished is None:
        return
    try:
        wc.add(ctx.redis, ctx.settings.stream_key, {wc.ACTIONS.field(*finished): 1})
    except redis.RedisError as exc:
        # The action is done either way; only the metric misses it.
        log.warning("could not count a finished %s action (%s)", finished[0], exc)


@shared_task(name=PERFORM_ACTION, bind=True, acks_late=True, ignore_result=True)
def perform_action_task(self: Any, action_id: int) -> None:
    ctx = _ctx(self)
    nxt = perform_action(ctx, action_id)
    _count(ctx, nxt.finished)
    _schedule(nxt, action_id)


@shared_task(name=POST_ALERT, bind=True, acks_late=True, ignore_result=True)
def post_alert_task(self: Any, group_id: int) -> None:
    ctx = _ctx(self)
    with session_scope(ctx.sessions) as session:
        delay = post_group(session, group_id, ctx.sinks)
    if delay is not None:
        post_alert_task.apply_async((group_id,), countdown=delay, queue=ACTIONS_QUEUE)
