"""See it live: stored status changes as Server-Sent Events (GET /api/stream) and as a polled
feed (GET /api/changes), read from the Redis Stream the workers publish to after each commit
(the contract: shared/changes.py; the publisher: workers/changes.py).

stream_token (signed short-lived tokens for EventSource) -> views (the endpoints) -> hub (one
feed reader per process for all its streams) and feed (reads from Redis); items (a change with
its position and SSE text).
"""

from __future__ import annotations

import redis
from flask import Flask

from ingest.live.context import LiveContext
from ingest.live.stream_token import check_stream_token, issue_stream_token
from ingest.live.views import bp
from shared.config import Settings

__all__ = ["bp", "check_stream_token", "install", "issue_stream_token"]


def install(app: Flask, settings: Settings, client: redis.Redis | None = None) -> None:
    """Register the live endpoints; the feed reader starts with the process's first stream."""
    app.extensions["statuspipe_live"] = LiveContext.build(settings, client)
    app.register_blueprint(bp)
