"""GET /api/stream (Server-Sent Events), POST /api/stream/token, GET /api/changes (polling).

Auth: bearer `API_TOKEN` everywhere (the token and the polling endpoints are on the /api
blueprint, with its check and rate limit); the stream, on a blueprint of its own, also takes
`?token=` from POST /api/stream/token, since a browser's EventSource cannot send headers.

An open stream holds no request thread: the view accepts it and leaves a Handoff; the web
worker (ingest/web_worker.py) sends the headers and gives the connection to the process's
stream writer (writer.py), which sends every change from then on. Each process holds at most
`STREAM_MAX_PER_PROCESS` streams.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from ingest.api.blueprint import bearer_token_is_valid
from ingest.api.blueprint import bp as api_bp
from ingest.api.errors import api_error
from ingest.live import feed
from ingest.live.context import LiveContext
from ingest.live.items import Filters
from ingest.live.stream_token import (
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    check_stream_token,
    issue_stream_token,
)
from ingest.stream_handoff import HANDOFF, SERVES_STREAMS
from shared.callback import MESSAGE_SID_RE
from shared.changes import START, Position

bp = Blueprint("live", __name__, url_prefix="/api")

RETRY_MS = 2000  # how long a disconnected EventSource waits before it reconnects
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _live() -> LiveContext:
    return current_app.extensions["statuspipe_live"]  # type: ignore[no-any-return]


def _unauthorized(message: str) -> Response:
    return api_error(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="statuspipe"'}
    )


def _limit() -> int:
    limit = int(request.args.get("limit", DEFAULT_LIMIT))
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError
    return limit


@api_bp.post("/stream/token")
def create_stream_token() -> Response:
    doc = request.get_json(silent=True) or {}
    ttl = doc.get("ttl_seconds", DEFAULT_TTL_SECONDS) if isinstance(doc, dict) else None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_SECONDS:
        return api_error(
            422, "invalid", f"ttl_seconds must be an integer from 1 to {MAX_TTL_SECONDS}",
            "ttl_seconds",
        )  # fmt: skip
    settings = _live().settings
    token = issue_stream_token(settings, ttl)
    expires = datetime.fromtimestamp(int(token.partition(".")[0]), UTC)
    response = jsonify(
        {
            "token": token,
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
            "stream_url": f"/api/stream?token={token}",
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _filters() -> Filters:
    """Raises ValueError naming the bad parameter."""
    sid = request.args.get("sid") or None
    if sid is not None and not MESSAGE_SID_RE.match(sid):
        raise ValueError("sid")
    to = request.args.get("to") or None
    if to is not None and to.startswith(" "):
        to = "+" + to[1:]  # an unencoded "+" arrives as a space
    raw_status = request.args.get("status") or None
    statuses = frozenset(s.strip() for s in raw_status.split(",")) if raw_status else None
    return Filters(sid, to, statuses)


@bp.get("/stream")
def stream() -> Response:
    live = _live()
    token = request.args.get("token", "")
    if not bearer_token_is_valid() and not check_stream_token(live.settings, token):
        message = (
            "the stream token is invalid or expired: get a new one from POST /api/stream/token"
            if token
            else "bearer token or ?token= (from POST /api/stream/token) required"
        )
        return _unauthorized(message)
    if not request.environ.get(SERVES_STREAMS):
        return api_error(
            503, "streams_unsupported",
            "this server cannot hold streams open: they need the web command's worker class"
            " (ingest.web_worker.Worker, the default of ingest/gunicorn_conf.py) without TLS in"
            " gunicorn; poll GET /api/changes instead",
        )  # fmt: skip
    try:
        filters = _filters()
    except ValueError as exc:
        return api_error(400, "invalid", f"invalid {exc}", str(exc))
    resume = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    try:
        start = Position.parse(resume) if resume else None
    except ValueError:
        return api_error(400, "invalid", "Last-Event-ID is not an id this stream sent", None)
    if not live.hub.join():
        return api_error(
            503, "too_many_streams",
            f"this process holds {live.hub.max_streams} streams already; retry, or poll"
            " GET /api/changes", headers={"Retry-After": "5"},
        )  # fmt: skip
    try:
        first = [f"retry: {RETRY_MS}\n: connected\n\n"]
        if start is None:
            start = live.hub.latest()
        elif feed.trimmed_past(live.reader, live.hub.key, start):
            first.append('event: gap\ndata: {"reason":"changes after Last-Event-ID expired"}\n\n')
    except BaseException:
        live.hub.leave()
        raise
    request.environ[HANDOFF] = live.writer.handoff(start, filters)
    # An iterator, not bytes: no Content-Length, the body goes on after the first bytes.
    first_bytes = iter(["".join(first).encode()])
    response = Response(first_bytes, mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@api_bp.get("/changes")
def changes() -> Response:
    live = _live()
    try:
        limit = _limit()
    except ValueError:
        return api_error(400, "invalid", f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    cursor = request.args.get("cursor") or None
    try:
        position = Position.parse(cursor) if cursor else START
    except ValueError:
        return api_error(400, "invalid", "cursor is not one this API returned", "cursor")
    key = live.hub.key
    if cursor and feed.trimmed_past(live.reader, key, position):
        return api_error(
            410, "cursor_expired",
            "changes after this cursor were trimmed (kept"
            f" {live.settings.changes_retention_seconds} s); start again without a cursor",
            "cursor",
        )  # fmt: skip
    # Read before the page: an entry published meanwhile comes after it, so is not skipped.
    published = None if cursor else feed.end(live.reader, key)
    items = feed.read_after(live.reader, key, position, limit)
    # An empty page: the same cursor, or, with nothing kept, after the last one published.
    next_cursor = items[-1].position if items else published or position
    return jsonify(
        {
            "changes": [{"id": str(i.position), **i.change.document()} for i in items],
            "next_cursor": str(next_cursor),
        }
    )
