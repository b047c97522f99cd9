"""Optional HTTP Basic authentication of Twilio to /twilio/status (CALLBACK_BASIC_AUTH).

Twilio first calls a `https://user:pass@host/...` URL without credentials and sends them only
after a 401 with `WWW-Authenticate: Basic`, so the challenge is part of the protocol, not an
error. The endpoint checks this before the signature; the signature itself covers the URL
*without* `user:pass@` (see ingest/signature.py, url_forms).
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from collections.abc import Mapping
from typing import Any

from ingest.callback_outcome import Outcome

UNAUTHORIZED = Outcome(
    401,
    "unauthorized",
    "credentials required",
    (("WWW-Authenticate", 'Basic realm="statuspipe", charset="UTF-8"'),),
)


class BasicAuth:
    """Checks the Authorization header against one user:pass, in constant time."""

    def __init__(self, credentials: str) -> None:
        self.expected = credentials.encode("utf-8")

    def allows(self, environ: Mapping[str, Any]) -> bool:
        header: str = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = b64decode(encoded.strip().encode("ascii"), validate=True)
        except (ValueError, binascii.Error):  # non-ASCII or not base64
            return False
        return hmac.compare_digest(given, self.expected)
