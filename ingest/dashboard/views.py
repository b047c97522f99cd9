"""The dashboard's routes. Signed out, `/dashboard` is the sign-in form; everything else needs
the session cookie (ingest/dashboard/session.py).

The page holds no data and no token: its script asks `/dashboard/data` for the figures and
`/dashboard/stream-token` for a short-lived token to open the live feed (`/api/stream`) with,
since a browser's EventSource cannot send an Authorization header.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from ingest.context import IngestContext
from ingest.dashboard import session
from ingest.dashboard.overview import overview

log = logging.getLogger(__name__)

STREAM_TOKEN_TTL_SECONDS = 60

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

# Only this app's own files: no inline script, no other origin (the page works offline).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _ctx() -> IngestContext:
    return current_app.extensions["statuspipe"]


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not no-referrer: with it the browser sends `Origin: null` on the sign-in form's POST,
    # which the same-origin check below could not tell from another site's.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "dashboard.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _same_origin() -> bool:
    """A form posted from another site is refused (SameSite covers the cookie, not sign-in)."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _unauthorized() -> Response:
    response = jsonify({"error": {"code": "unauthorized", "message": "sign in at /dashboard"}})
    response.status_code = 401
    return response


@bp.get("")
def page() -> Response | str:
    if not session.signed_in(_ctx().settings, request):
        return render_template("login.html", error=None)
    return render_template("dashboard.html")


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    settings = _ctx().settings
    if not _same_origin():
        return render_template("login.html", error="Sign in from this site's own page."), 403
    if not session.token_matches(settings, request.form.get("token", "")):
        log.warning("dashboard sign-in refused: wrong token (from %s)", request.remote_addr)
        return render_template("login.html", error="That is not the API token."), 401
    response = redirect("/dashboard", code=303)
    session.sign_in(settings, request, response)
    return response


@bp.post("/logout")
def logout() -> Response:
    response = redirect("/dashboard", code=303)
    session.sign_out(request, response)
    return response


@bp.get("/data")
def data() -> Response:
    ctx = _ctx()
    if not session.signed_in(ctx.settings, request):
        return _unauthorized()
    return jsonify(overview(ctx))


@bp.get("/stream-token")
def stream_token() -> Response:
    ctx = _ctx()
    if not session.signed_in(ctx.settings, request):
        return _unauthorized()
    from ingest.live.stream_token import issue_stream_token

    token = issue_stream_token(ctx.settings, ttl_seconds=STREAM_TOKEN_TTL_SECONDS)
    return jsonify({"token": token, "url": "/api/stream", "ttl_seconds": STREAM_TOKEN_TTL_SECONDS})
