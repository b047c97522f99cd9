"""CORS for the admin API (/api/*): closed unless CORS_ORIGINS names origins.

Browsers send a preflight (OPTIONS with Origin and Access-Control-Request-Method) without the
bearer token, so it is answered here, before the token check: 204 with the allowed methods and
headers for a listed origin, 403 for any other. Answers to a listed origin carry
Access-Control-Allow-Origin; to any other origin they carry nothing, which is what keeps a
browser on another site from reading them. /twilio/status never gets here (a WSGI fast path).
"""

from __future__ import annotations

from flask import Flask, Response, request

from ingest.api.errors import api_error

PREFIX = "/api/"
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"


def install_cors(app: Flask, origins: tuple[str, ...]) -> None:
    allowed = frozenset(origins)
    any_origin = "*" in allowed

    def is_allowed(origin: str) -> bool:
        return any_origin or origin in allowed

    @app.before_request
    def _preflight() -> Response | None:
        if (
            request.method != "OPTIONS"
            or not request.path.startswith(PREFIX)
            or "Access-Control-Request-Method" not in request.headers
        ):
            return None
        origin = request.headers.get("Origin", "")
        if not is_allowed(origin):
            return api_error(403, "origin_not_allowed", "cross-origin requests are not allowed")
        response = Response(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    def _allow_origin(response: Response) -> Response:
        if not request.path.startswith(PREFIX):
            return response
        # The answer depends on Origin whenever CORS is on: caches must not mix them up.
        if allowed:
            response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin and is_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
        return response
