"""The Flask app: the callback endpoint in front, then the API, metrics, dashboard, live views."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ingest import api, dashboard, health, live, metrics
from ingest.api.errors import api_error
from ingest.api_limits import install_api_limits
from ingest.callback_endpoint import CallbackEndpoint
from ingest.callback_request import MAX_BODY_BYTES
from ingest.context import IngestContext
from ingest.cors import install_cors
from ingest.responses import plain
from shared.config import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, redis_client: redis.Redis | None = None) -> Flask:
    # No static files: without this Flask would answer a /static/<path> route of its own.
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    ctx = IngestContext.build(settings, redis_client)
    app.extensions["statuspipe"] = ctx
    app.wsgi_app = CallbackEndpoint(app.wsgi_app, ctx)  # type: ignore[method-assign]
    # CORS before the limiter: a preflight carries no token and must not count as a failure.
    install_cors(app, settings.cors_origins)
    install_api_limits(app, ctx)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(dashboard.bp)
    live.install(app, settings, redis_client)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if request.path.startswith("/api/"):
            code = exc.name.lower().replace(" ", "_")
            return api_error(exc.code or 500, code, exc.description or exc.name)
        # Plain, short reasons: the caller is a machine (Twilio) or an operator with curl.
        return plain(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        if request.path.startswith("/api/"):
            return api_error(500, "internal_error", "internal error; see the web process's log")
        return plain(500, "internal error")

    if settings.signature_mode == "off":
        log.warning("SIGNATURE_MODE=off: callbacks are NOT authenticated; local development only")
    elif settings.signature_mode == "log-only":
        log.warning("SIGNATURE_MODE=log-only: bad signatures are logged but accepted")
    return app
