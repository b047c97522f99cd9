"""Is a callback really from Twilio: the Verifier interface, and X-Twilio-Signature checked with
the official validator against the URL Twilio was given (auth-token signing)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote

from twilio.request_validator import RequestValidator

from ingest.callback_request import CallbackRequest


class Verifier(Protocol):
    """One way of authenticating callbacks. The endpoint decides what a failure costs
    (SIGNATURE_MODE); a verifier only tells what was wrong."""

    def verify(self, request: CallbackRequest) -> str | None:
        """None when the callback is authentic, else what was wrong, for the log."""
        ...


class SignatureChecker:
    """Accepts a signature made with any configured auth token (primary, or secondary while
    rotating). Computes one HMAC per token: the public URL is known exactly, so the port
    guessing of RequestValidator.validate (which doubles the cost) is not needed."""

    def __init__(self, public_url: str, tokens: Iterable[str]) -> None:
        self.public_url = public_url.rstrip("/")
        self.validators = [RequestValidator(t) for t in tokens]

    def signed_url(self, environ: Mapping[str, str]) -> str:
        return self.public_url + raw_path_and_query(environ)

    def verify(self, request: CallbackRequest) -> str | None:
        url = self.signed_url(request.environ)
        # Twilio signs a GET as the URL alone: its fields are already in the query string.
        params = request.fields if request.method == "POST" else {}
        signature = request.environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if self.is_valid(url, params, signature):
            return None
        return f"{'a wrong' if signature else 'no'} signature for {url}"

    def is_valid(self, url: str, params: Mapping[str, object], signature: str) -> bool:
        if not signature:
            return False
        # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header must be a
        # 403, not a 500.
        given = signature.encode("utf-8", "surrogateescape")
        for validator in self.validators:
            expected = validator.compute_signature(url, params).encode("ascii")
            if hmac.compare_digest(expected, given):
                return True
        return False


def raw_path_and_query(environ: Mapping[str, str]) -> str:
    """Path and query string exactly as the client sent them.

    Frameworks that rebuild the URL (decoding %-escapes, reordering the query) break the HMAC,
    so prefer the server's raw request line (gunicorn: RAW_URI, others: REQUEST_URI).
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw:  # absolute-form request target from a forward proxy
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        return raw.split("#", 1)[0]
    path = quote(
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~"
    )
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path
