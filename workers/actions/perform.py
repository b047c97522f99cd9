"""Carry out one action, exactly once, whoever runs it and however often it is dispatched.

Every run starts by locking the action's row (`FOR UPDATE SKIP LOCKED`) and reading its state:
a row another worker holds, or one already done, is left alone, so duplicate dispatches (the
sweeper, a redelivered task) are harmless. A resend is the one step that leaves the database: its
outbound record and the `sending` state are committed *before* Twilio is called, so a worker that
dies during the call leaves a trace that the next run settles by asking Twilio (settle.py)
instead of sending a second time.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.config import ConfigError
from shared.db import session_scope
from shared.models import Action, Message, OutboundMessage
from shared.sending import (
    TwilioCallFailed,
    create_on_twilio,
    outbound_for_message,
    record_created,
    record_failed,
    store_resend,
)
from workers.actions.contacts import mark_contact
from workers.actions.context import ActionContext
from workers.actions.decide import FAILURE_STATUSES, resend_delay
from workers.actions.settle import find_created
from workers.alerts.groups import join_group

log = logging.getLogger(__name__)

# Twilio's 429 and 5xx on create are retried in the task this many times, with backoff, before
# the action goes back to pending for a later run.
CREATE_TRIES = 4
CREATE_BACKOFF_SECONDS = 0.5


@dataclass
class Next:
    """What the caller (the Celery task) schedules after a run."""

    run_again_in: float | None = None  # seconds; None: nothing more for this action
    post_alerts: list[tuple[int, datetime]] = field(default_factory=list)  # (group, not before)
    # (kind, outcome) when this run finished the action, for the actions counter: returned from
    # within the transaction that finishes it, so a run whose commit fails returns none.
    finished: tuple[str, str] | None = None


def _jitter(action_id: int) -> float:
    # Stable per action, so re-evaluating the due time does not move it: in [0, 1).
    return (zlib.crc32(action_id.to_bytes(8, "big")) % 1000) / 1000


def _finish(
    action: Action,
    outcome: str,
    detail: str,
    now: datetime,
    post_alerts: list[tuple[int, datetime]] | None = None,
) -> Next:
    action.state = "done"
    action.outcome = outcome
    action.detail = detail[:1000]
    action.updated_at = now
    log.info("action %d (%s) for %s: %s, %s", action.id, action.kind, action.message_sid,
             outcome, detail)  # fmt: skip
    return Next(post_alerts=post_alerts or [], finished=(action.kind, outcome))


def _lock(session: Session, action_id: int) -> Action | None:
    return session.scalars(
        select(Action).where(Action.id == action_id).with_for_update(skip_locked=True)
    ).first()


def perform_action(ctx: ActionContext, action_id: int, now: datetime | None = None) -> Next:
    """Run one action as far as it can go now. Idempotent."""
    now = now or datetime.now(UTC)
    resend: OutboundMessage | None = None
    with session_scope(ctx.sessions) as session:
        action = _lock(session, action_id)
        if action is None or action.state == "done":
            return Next()
        if action.state == "sending":
            in_flight = (now - action.updated_at).total_seconds()
            if in_flight < ctx.settle_after_seconds:
                # Another worker's create call may still be waiting for Twilio's answer.
                return Next(run_again_in=ctx.settle_after_seconds - in_flight)
            return _settle(ctx, session, action, now)
        action.runs += 1
        if action.kind == "contact_update":
            return _update_contact(session, action, now)
        if action.kind == "alert":
            return _alert(ctx, session, action, now)
        if action.kind != "retry":
            return _finish(action, "skipped", f"unknown action kind {action.kind!r}", now)
        prepared = _prepare_resend(ctx, session, action, now)
        if isinstance(prepared, Next):
            return prepared
        resend = prepared
    return _send(ctx, action_id, resend)


def _update_contact(session: Session, action: Action, now: datetime) -> Next:
    message = session.get(Message, action.message_sid)
    number = message.to if message is not None else None
    if not number:
        return _finish(action, "skipped", "the failure callback carried no To number", now)
    state = action.contact_state or "invalid"
    mark_contact(session, number, state, action.error_code, action.message_sid)
    return _finish(action, "updated", f"{number} marked {state}", now)


def _alert(ctx: ActionContext, session: Session, action: Action, now: datetime) -> Next:
    code = action.error_code
    reason = ctx.codes.classify(code).reason
    group_id, post_at, created = join_group(
        session,
        kind="error_code",
        code=code,
        message_sid=action.message_sid,
        at=now,
        window_seconds=ctx.settings.alert_window_seconds,
        summary=f"Messages failed with Twilio error {code}: {reason}",
        detail={"reason": reason},
    )
    alerts = [(group_id, post_at)] if created else []
    return _finish(action, "alerted", f"counted in alert {group_id} (error {code})", now, alerts)


def _exhausted(
    ctx: ActionContext, session: Session, action: Action, attempts: int, now: datetime
) -> Next:
    reason = ctx.codes.classify(action.error_code).reason
    group_id, post_at, created = join_group(
        session,
        kind="retries_exhausted",
        code=action.error_code,
        message_sid=action.message_sid,
        at=now,
        window_seconds=ctx.settings.alert_window_seconds,
        summary=f"Messages still failing after {attempts} sends (error {action.error_code})",
        detail={"reason": reason, "attempts": attempts},
    )
    alerts = [(group_id, post_at)] if created else []
    detail = f"{attempts} sends made, none delivered; alert {group_id}"
    return _finish(action, "exhausted", detail, now, alerts)


def _prepare_resend(
    ctx: ActionContext, session: Session, action: Action, now: datetime
) -> Next | OutboundMessage:
    """Decide whether and when to resend; commits the resend's record before any call."""
    message = session.get(Message, action.message_sid)
    final = message.final_status if message is not None else None
    if final is not None and final not in FAILURE_STATUSES:
        return _finish(action, "skipped", f"the message was also reported {final}; not resent", now)
    failed = outbound_for_message(session, action.message_sid)
    if failed is None or (failed.body is None and not failed.media_urls):
        return _finish(action, "skipped", "body unknown: statuspipe did not send this message", now)
    next_attempt = failed.attempt + 1
    if next_attempt > ctx.settings.retry_max_attempts:
        return _exhausted(ctx, session, action, failed.attempt, now)
    try:
        ctx.twilio  # noqa: B018 - built here so a missing setting stops before any record
    except ConfigError as exc:
        log.error("cannot resend for %s: %s", action.message_sid, exc)
        return _finish(action, "failed", f"not resent: sending is not configured ({exc})", now)
    if action.resend_id is not None:
        row = session.get(OutboundMessage, action.resend_id)
        assert row is not None  # a foreign key
    else:
        delay = resend_delay(next_attempt, ctx.settings.retry_backoff_seconds, _jitter(action.id))
        due = action.created_at + timedelta(seconds=delay)
        if now < due:
            action.due_at = due
            action.updated_at = now
            return Next(run_again_in=(due - now).total_seconds())
        row = store_resend(session, failed)
        action.resend_id = row.id
    action.state = "sending"
    action.updated_at = now
    return row


def _send(ctx: ActionContext, action_id: int, row: OutboundMessage) -> Next:
    """The create call, outside any transaction; then its outcome, in one."""
    for attempt in range(1, CREATE_TRIES + 1):
        ctx.limiter.acquire()
        try:
            instance = create_on_twilio(ctx.twilio, ctx.settings, row)
        except TwilioCallFailed as failure:
            if failure.transient and attempt < CREATE_TRIES:
                wait = CREATE_BACKOFF_SECONDS * 2 ** (attempt - 1)
                log.warning("resend %d: %s; trying again in %.1fs", row.id, failure, wait)
                time.sleep(wait)
                continue
            return _send_failed(ctx, action_id, row, failure)
        break
    now = datetime.now(UTC)
    with session_scope(ctx.sessions) as session:
        record_created(session, row.id, instance)
        action = session.get(Action, action_id)
        assert action is not None
        return _finish(action, "sent", f"resent as {instance.sid} (attempt {row.attempt})", now)


def _send_failed(
    ctx: ActionContext, action_id: int, row: OutboundMessage, failure: TwilioCallFailed
) -> Next:
    now = datetime.now(UTC)
    with session_scope(ctx.sessions) as session:
        record_failed(session, failure)
        action = session.get(Action, action_id)
        assert action is not None
        if failure.sent is None:
            # No answer: Twilio may have the message. Never send again without asking.
            return _settle(ctx, session, action, now)
        if failure.transient:
            delay = min(ctx.settings.retry_backoff_seconds * 2 ** min(action.runs, 6), 900.0)
            action.state = "pending"
            action.due_at = now + timedelta(seconds=delay)
            action.updated_at = now
            log.warning("resend %d: %s; the action runs again in %.0fs", row.id, failure, delay)
            return Next(run_again_in=delay)
        return _finish(action, "failed", f"Twilio refused the resend: {failure}", now)


def _settle(ctx: ActionContext, session: Session, action: Action, now: datetime) -> Next:
    """A resend whose create may or may not have happened (timeout, or its worker died)."""
    row = session.get(OutboundMessage, action.resend_id) if action.resend_id else None
    if row is None:
        # Died after locking but before storing the resend: nothing can have been sent.
        action.state = "pending"
        action.updated_at = now
        return Next(run_again_in=0.0)
    if row.sid is not None:
        return _finish(action, "sent", f"resent as {row.sid} (attempt {row.attempt})", now)

    def known(sid: str) -> bool:
        return (
            session.scalars(select(OutboundMessage.id).where(OutboundMessage.sid == sid)).first()
            is not None
        )

    ctx.limiter.acquire()
    found = find_created(ctx.twilio, row, known)
    if found is not None:
        record_created(session, row.id, found)
        found_by = "found by listing after no answer"
        return _finish(
            action, "sent", f"resent as {found.sid} (attempt {row.attempt}; {found_by})", now
        )
    row.send_state = "unknown"
    detail = (
        "Twilio did not answer the resend and lists no such message; "
        "not sent again, to avoid a duplicate"
    )
    return _finish(action, "unknown", detail, now)
