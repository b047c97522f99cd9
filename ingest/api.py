"""Read API: the current status and audit trail of messages. Bearer token `API_TOKEN`."""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import and_, or_, select

from ingest.context import IngestContext
from ingest.responses import plain
from shared.callback import MESSAGE_SID_RE
from shared.models import Message, MessageEvent

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; everything stored is UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    }


@bp.before_request
def _authenticate() -> Response | None:
    ctx: IngestContext = current_app.extensions["statuspipe"]
    expected = ctx.settings.api_token
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
        )
    ):
        return plain(
            401, "bearer token required", {"WWW-Authenticate": 'Bearer realm="statuspipe"'}
        )
    return None


@bp.get("/messages/<sid>")
def get_message(sid: str) -> Response | tuple[Response, int]:
    if not MESSAGE_SID_RE.match(sid):
        return plain(400, "sid must be SM or MM followed by 32 hex characters")
    ctx: IngestContext = current_app.extensions["statuspipe"]
    with ctx.sessions() as session:
        message = session.get(Message, sid)
        if message is None:
            return plain(404, f"no callbacks seen for {sid}")
        events = session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_sid == sid)
            .order_by(MessageEvent.received_at, MessageEvent.status)
        ).all()
        doc = message_json(message)
        doc["events"] = [event_json(e) for e in events]
    return jsonify(doc)


def _parse_time(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _encode_cursor(m: Message) -> str:
    return base64.urlsafe_b64encode(f"{iso(m.created_at)}|{m.sid}".encode()).decode()


def _decode_cursor(raw: str) -> tuple[datetime, str]:
    created, _, sid = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
    return _parse_time(created), sid


@bp.get("/messages")
def list_messages() -> Response:
    """Messages created at or after `since`, oldest first; `cursor` continues a page."""
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        return plain(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    query = select(Message)
    if status := request.args.get("status"):
        query = query.where(Message.status == status)
    if since := request.args.get("since"):
        try:
            query = query.where(Message.created_at >= _parse_time(since))
        except ValueError:
            return plain(400, "since must be an ISO 8601 time, e.g. 2026-01-15T00:00:00Z")
    if cursor := request.args.get("cursor"):
        try:
            created, sid = _decode_cursor(cursor)
        except (ValueError, UnicodeDecodeError):
            return plain(400, "cursor is not one this API returned")
        query = query.where(
            or_(
                Message.created_at > created, and_(Message.created_at == created, Message.sid > sid)
            )
        )
    query = query.order_by(Message.created_at, Message.sid).limit(limit)
    ctx: IngestContext = current_app.extensions["statuspipe"]
    with ctx.sessions() as session:
        rows = session.scalars(query).all()
        doc = {
            "messages": [message_json(m) for m in rows],
            "next_cursor": _encode_cursor(rows[-1]) if len(rows) == limit else None,
        }
    return jsonify(doc)
