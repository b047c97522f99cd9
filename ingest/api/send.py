"""POST /api/messages: send a message through Twilio, with statuspipe's StatusCallback."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request

from ingest.api.blueprint import bp
from ingest.api.errors import api_error
from ingest.api.views import message_document
from ingest.context import IngestContext
from shared.config import ConfigError
from shared.send_request import InvalidSendRequest, parse_send_request
from shared.sending import ContactBlocked, TwilioCallFailed, send_message


def twilio_failure_status(failure: TwilioCallFailed) -> int:
    """The HTTP answer for a refused or unanswered create.

    Twilio's 4xx about the message itself (bad number, missing body) is the caller's to fix:
    422. Its 429 and 5xx are temporary: 503. Twilio refusing statuspipe's own credentials is
    not the caller's fault: 502. No answer at all: 504, and the message may exist."""
    if failure.sent is None:
        return 504
    status = failure.http_status
    if status is None or status >= 500 or status == 429:
        return 503
    if status in (401, 403):
        return 502
    return 422


@bp.post("/messages")
def create_message() -> Response:
    doc = request.get_json(silent=True)
    if doc is None:
        return api_error(
            400, "invalid_json", "the body must be a JSON object (Content-Type: application/json)"
        )
    try:
        req = parse_send_request(doc)
    except InvalidSendRequest as exc:
        return api_error(422, "invalid", exc.message, exc.field)
    ctx: IngestContext = current_app.extensions["statuspipe"]
    try:
        client = ctx.twilio
    except ConfigError as exc:
        return api_error(503, "not_configured", f"sending is not configured: {exc}")
    try:
        row = send_message(ctx.sessions, client, ctx.settings, req)
    except ContactBlocked as exc:
        return api_error(409, f"contact_{exc.state}", str(exc), "to", reason_code=exc.reason_code)
    except TwilioCallFailed as failure:
        status = twilio_failure_status(failure)
        headers = {"Retry-After": "5"} if status == 503 else None
        return api_error(
            status,
            "twilio_error" if failure.sent is not None else "twilio_timeout",
            failure.message,
            None,
            headers=headers,
            twilio_code=failure.code,
            twilio_status=failure.http_status,
            id=failure.outbound_id,
        )
    with ctx.sessions() as session:
        view = message_document(session, row.sid) if row.sid else None
    response = jsonify(view or {"sid": row.sid, "id": row.id})
    response.status_code = 201
    response.headers["Location"] = f"/api/messages/{row.sid}"
    return response
