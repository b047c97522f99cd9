"""Find what a dead worker left behind and dispatch it again.

Three kinds of leftovers, all harmless to dispatch twice (each run locks its row first):
actions still pending well after they were due (lost between commit and dispatch, or a task
that crashed), resends stuck in `sending` past the REST timeout (their worker died during the
call; the next run settles them by asking Twilio), and alert groups whose window closed long
ago but were never posted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from shared.db import session_scope
from shared.models import Action
from workers.actions.context import ActionContext
from workers.alerts.groups import open_groups_due

log = logging.getLogger(__name__)

SWEEP_LIMIT = 1000


@dataclass
class Swept:
    actions: int = 0
    alerts: int = 0


def sweep(
    ctx: ActionContext,
    dispatch_action: Callable[[int], None],
    dispatch_alert: Callable[[int], None],
    now: datetime | None = None,
) -> Swept:
    now = now or datetime.now(UTC)
    stale = timedelta(seconds=ctx.settings.action_stale_seconds)
    in_flight = timedelta(seconds=ctx.settle_after_seconds)
    with session_scope(ctx.sessions) as session:
        action_ids = list(
            session.scalars(
                select(Action.id)
                .where(
                    Action.state != "done",
                    or_(
                        and_(Action.state == "pending", Action.due_at < now - stale),
                        and_(Action.state == "sending", Action.updated_at < now - in_flight),
                    ),
                )
                .order_by(Action.due_at)
                .limit(SWEEP_LIMIT)
            )
        )
        group_ids = open_groups_due(session, now - stale)
    for action_id in action_ids:
        dispatch_action(action_id)
    for group_id in group_ids:
        dispatch_alert(group_id)
    if action_ids or group_ids:
        log.warning(
            "sweeper dispatched %d actions and %d alerts left behind",
            len(action_ids),
            len(group_ids),
        )
    return Swept(len(action_ids), len(group_ids))
