"""POST /twilio/status: validate, append the raw callback to Redis in one round trip, answer.

Nothing here touches the database: the answer depends only on Redis accepting the callback.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

import redis
from flask import Blueprint, Response, current_app, request
from werkzeug.datastructures import MultiDict

from ingest.context import IngestContext
from shared.callback import missing_field_reason
from shared.stream import BacklogFull

log = logging.getLogger(__name__)

bp = Blueprint("status", __name__)

FORM_TYPE = "application/x-www-form-urlencoded"


def plain(status: int, text: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, mimetype="text/plain", headers=headers)


@bp.route("/twilio/status", methods=["POST", "GET"])
def status_callback() -> Response:
    ctx: IngestContext = current_app.extensions["statuspipe"]
    environ = request.environ
    query = environ.get("QUERY_STRING", "").encode("latin-1")
    if request.method == "POST":
        if request.mimetype != FORM_TYPE:
            return plain(415, f"expected {FORM_TYPE}, got {request.mimetype or 'no content type'}")
        body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH raises 413
        form_bytes = body
    else:
        body = b""
        form_bytes = query
    try:
        pairs = parse_qsl(form_bytes.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return plain(400, "callback is not valid UTF-8")
    fields = MultiDict(pairs)

    if ctx.signatures is not None:
        url = ctx.signatures.signed_url(environ)
        # Twilio signs a GET as the URL alone: its fields are already in the query string.
        signed_params = fields if request.method == "POST" else {}
        signature = request.headers.get("X-Twilio-Signature", "")
        if not ctx.signatures.is_valid(url, signed_params, signature):
            if ctx.settings.signature_mode == "enforce":
                log.warning(
                    "rejected callback with %s signature for %s",
                    "a wrong" if signature else "no",
                    url,
                )
                return plain(403, "invalid X-Twilio-Signature")
            log.warning(
                "accepting callback with an invalid signature (SIGNATURE_MODE=log-only) for %s", url
            )

    reason = missing_field_reason(fields)
    if reason:
        return plain(400, reason)

    try:
        ctx.enqueuer.enqueue(
            body=body,
            query=query,
            method=request.method,
            token=request.headers.get("I-Twilio-Idempotency-Token", ""),
            received=time.time(),
        )
    except BacklogFull:
        log.warning("backlog over %d callbacks: answering 503", ctx.settings.max_backlog)
        retry = str(ctx.settings.retry_after_seconds)
        return plain(503, "backlog full, retry later", {"Retry-After": retry})
    except redis.RedisError as exc:
        log.error("redis did not accept the callback (%s): answering 503", exc)
        return plain(503, "storage unavailable, retry later", {"Retry-After": "1"})
    return plain(200)
