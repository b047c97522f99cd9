"""GET /api/messages/<sid> and GET /api/messages: what statuspipe knows of messages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from flask import Response, current_app, jsonify, request
from sqlalchemy import and_, or_, select

from ingest.api.blueprint import bp
from ingest.api.errors import api_error
from ingest.api.views import iso, message_document, message_json
from ingest.context import IngestContext
from shared.callback import MESSAGE_SID_RE
from shared.models import Message

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@bp.get("/messages/<sid>")
def get_message(sid: str) -> Response:
    if not MESSAGE_SID_RE.match(sid):
        return api_error(
            400, "invalid", "sid must be SM or MM followed by 32 hex characters", "sid"
        )
    ctx: IngestContext = current_app.extensions["statuspipe"]
    with ctx.sessions() as session:
        doc = message_document(session, sid)
    if doc is None:
        return api_error(
            404, "not_found", f"no message {sid}: not sent by statuspipe, no callbacks"
        )
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
        return api_error(400, "invalid", f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    query = select(Message)
    if status := request.args.get("status"):
        query = query.where(Message.status == status)
    if since := request.args.get("since"):
        try:
            query = query.where(Message.created_at >= _parse_time(since))
        except ValueError:
            return api_error(
                400, "invalid", "since must be an ISO 8601 time, e.g. 2026-01-15T00:00:00Z", "since"
            )
    if cursor := request.args.get("cursor"):
        try:
            created, sid = _decode_cursor(cursor)
        except (ValueError, UnicodeDecodeError):
            return api_error(400, "invalid", "cursor is not one this API returned", "cursor")
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
