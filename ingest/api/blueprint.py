"""The /api blueprint and its bearer-token check; resource modules add their routes to it."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from ingest.api.errors import api_error
from ingest.context import IngestContext

bp = Blueprint("api", __name__, url_prefix="/api")


def bearer_token_is_valid() -> bool:
    """The request carries `Authorization: Bearer <API_TOKEN>` (compared in constant time)."""
    ctx: IngestContext = current_app.extensions["statuspipe"]
    expected = ctx.settings.api_token
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    return bool(
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
    )


@bp.before_request
def _authenticate() -> Response | None:
    if not bearer_token_is_valid():
        return api_error(
            401,
            "unauthorized",
            "bearer token required (Authorization: Bearer <API_TOKEN>)",
            headers={"WWW-Authenticate": 'Bearer realm="statuspipe"'},
        )
    return None


@bp.before_request
def _refuse_nul() -> Response | None:
    # PostgreSQL text cannot hold NUL: a parameter with one could only end in a 500.
    if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
        return api_error(400, "invalid", "parameters must not contain NUL characters")
    return None
