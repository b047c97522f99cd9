"""Short-lived signed tokens for GET /api/stream: a browser's EventSource cannot send an
Authorization header, so a page that holds the API token (or a session) asks for one of these
and puts it in the stream's URL instead.

A token is `<expiry epoch seconds>.<HMAC-SHA256>`, keyed with a key derived from `API_TOKEN`:
nothing is stored, any web process checks any token, and rotating `API_TOKEN` revokes them all.
It only opens a stream: a leaked URL (proxy logs, history) is worth minutes of the feed, never
the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from shared.config import Settings

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 3600
_PURPOSE = b"statuspipe stream token v1"


def _key(settings: Settings) -> bytes:
    # Derived, not API_TOKEN itself: a token then proves nothing about the API token.
    return hmac.new(settings.api_token.encode(), _PURPOSE, hashlib.sha256).digest()


def _signature(settings: Settings, expires: int) -> str:
    mac = hmac.new(_key(settings), f"stream:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue_stream_token(
    settings: Settings, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> str:
    """A token valid for `ttl_seconds` (1 to MAX_TTL_SECONDS) from now."""
    if not settings.api_token:
        raise ValueError("API_TOKEN is not set: stream tokens cannot be signed")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be from 1 to {MAX_TTL_SECONDS}, got {ttl_seconds}")
    expires = int(time.time() if now is None else now) + ttl_seconds
    return f"{expires}.{_signature(settings, expires)}"


def check_stream_token(settings: Settings, token: str, now: float | None = None) -> bool:
    """True for a token issue_stream_token made with this API_TOKEN that has not expired."""
    if not settings.api_token or not token:
        return False
    raw_expires, _, signature = token.partition(".")
    if not raw_expires.isdigit() or len(raw_expires) > 12:
        return False
    expires = int(raw_expires)
    current = time.time() if now is None else now
    # A far-off expiry was not made here (the longest is MAX_TTL_SECONDS): refuse it outright.
    if not current < expires <= current + MAX_TTL_SECONDS + 1:
        return False
    return hmac.compare_digest(_signature(settings, expires), signature)
