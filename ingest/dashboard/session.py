"""Dashboard sign-in: the API token once, then a signed cookie that does not contain it.

The cookie is signed with a key derived from API_TOKEN, so rotating the token signs everyone
out, and nothing else (no secret key setting) has to be kept. It is HttpOnly (no script reads
it), SameSite=Strict (no other site's page makes the browser send it) and, when the page was
reached over HTTPS, Secure.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.config import Settings

COOKIE = "statuspipe_dashboard"
MAX_AGE_SECONDS = 12 * 3600
_SALT = "statuspipe.dashboard.session"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        settings.api_token, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def token_matches(settings: Settings, given: str) -> bool:
    expected = settings.api_token
    return bool(expected) and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )


def signed_in(settings: Settings, request: Request) -> bool:
    value = request.cookies.get(COOKIE)
    if not value or not settings.api_token:
        return False
    try:
        _serializer(settings).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
        return False
    return True


def _secure(request: Request) -> bool:
    # Behind Heroku's router or an ingress the app sees http; the proxy says what the browser used.
    return request.is_secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def sign_in(settings: Settings, request: Request, response: Response) -> None:
    response.set_cookie(
        COOKIE,
        _serializer(settings).dumps({"v": 1}),
        max_age=MAX_AGE_SECONDS,
        path="/dashboard",
        secure=_secure(request),
        httponly=True,
        samesite="Strict",
    )


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/dashboard", secure=_secure(request), httponly=True, samesite="Strict"
    )
