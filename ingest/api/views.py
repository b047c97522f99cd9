"""A message as the API shows it: the current status and audit trail from the callbacks, and,
when statuspipe sent it, its own id, its place in a resend chain and the actions taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Action, Message, MessageEvent, OutboundMessage
from shared.sending import outbound_for_message
from shared.timefmt import iso_utc


def iso(value: datetime | None) -> str | None:
    return None if value is None else iso_utc(value)


def message_json(m: Message) -> dict[str, Any]:
    return {
        "sid": m.sid,
        "status": m.status,
        "error_code": m.error_code,
        "error_message": m.error_message,
        "to": m.to,
        "from": m.from_,
        "account_sid": m.account_sid,
        "messaging_service_sid": m.messaging_service_sid,
        "created_at": iso(m.created_at),
        "status_updated_at": iso(m.status_updated_at),
        "callback_received_at": iso(m.callback_received_at),
        "carrier_done_at": iso(m.carrier_done_at),
        "needs_reconcile": m.needs_reconcile,
    }


def event_json(e: MessageEvent) -> dict[str, Any]:
    return {
        "status": e.status,
        "error_code": e.error_code,
        "error_message": e.error_message,
        "received_at": iso(e.received_at),
        "processed_at": iso(e.processed_at),
        "duplicate_count": e.duplicate_count,
        # `reconcile`: fetched from Twilio's API because the callback never came.
        "source": e.source,
    }


def _outbound_only_json(o: OutboundMessage) -> dict[str, Any]:
    """A sent message no callback has reached yet: what Twilio's create answered."""
    return {
        "sid": o.sid,
        "status": o.initial_status,
        "error_code": None,
        "error_message": None,
        "to": o.to,
        "from": o.from_,
        "account_sid": None,
        "messaging_service_sid": o.messaging_service_sid,
        "created_at": iso(o.created_at),
        "status_updated_at": None,
        "callback_received_at": None,
        "carrier_done_at": None,
        "needs_reconcile": False,
    }


def message_document(session: Session, sid: str) -> dict[str, Any] | None:
    """The API's view of one message, or None when statuspipe knows nothing of it."""
    message = session.get(Message, sid)
    events = list(
        session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_sid == sid)
            .order_by(MessageEvent.received_at, MessageEvent.status)
        )
    )
    outbound = outbound_for_message(session, sid)
    if message is not None:
        doc = message_json(message)
    elif outbound is not None:
        doc = _outbound_only_json(outbound)
        doc["sid"] = sid
    else:
        return None
    doc["events"] = [event_json(e) for e in events]
    doc["id"] = outbound.id if outbound else None
    doc.update(_chain(session, outbound))
    actions = session.scalars(
        select(Action).where(Action.message_sid == sid).order_by(Action.created_at, Action.id)
    )
    doc["actions"] = [
        {"kind": a.kind, "outcome": a.outcome, "detail": a.detail, "at": iso(a.updated_at)}
        for a in actions
    ]
    return doc


def _chain(session: Session, outbound: OutboundMessage | None) -> dict[str, Any]:
    if outbound is None:
        return {"retry_of": None, "retries": []}
    original_id = outbound.original_id or outbound.id
    retry_of = None
    if outbound.original_id is not None:
        original = session.get(OutboundMessage, outbound.original_id)
        retry_of = original.sid if original else None
    retries = session.scalars(
        select(OutboundMessage.sid)
        .where(OutboundMessage.original_id == original_id, OutboundMessage.id != outbound.id)
        .where(OutboundMessage.attempt > outbound.attempt, OutboundMessage.sid.is_not(None))
        .order_by(OutboundMessage.attempt, OutboundMessage.id)
    )
    return {"retry_of": retry_of, "retries": list(retries)}
