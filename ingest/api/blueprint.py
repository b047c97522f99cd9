"""The /api blueprint and its bearer-token check; resource modules add their routes to it."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from ingest.api.errors import api_error
from ingest.context import IngestContext

bp = Blueprint("api", __name__, url_prefix="/api")


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
        return api_error(
            401,
            "unauthorized",
            "bearer token required (Authorization: Bearer <API_TOKEN>)",
            headers={"WWW-Authenticate": 'Bearer realm="statuspipe"'},
        )
    return None
