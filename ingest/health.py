"""Liveness and readiness probes for load balancers and Kubernetes."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app

from ingest.context import IngestContext
from ingest.responses import plain

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return plain(200, "ok")


@bp.get("/readyz")
def readyz() -> Response:
    """Ready only when Redis answers: without it every callback would get a 503."""
    ctx: IngestContext = current_app.extensions["statuspipe"]
    try:
        ctx.redis.ping()
    except redis.RedisError as exc:
        return plain(503, f"redis unavailable: {exc}")
    return plain(200, "ready")
