"""Shared-key signatures (Twilio's Webhooks configuration API): a request that carries
`X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256|HMAC_SHA1` is signed with
that shared key's secret and algorithm instead of the Auth Token; the signed string is the same.

`SignatureSettingsVerifier` dispatches on that header: without it, the auth-token checker as
before; with it, the checker of the key it names. The problems it reports go to the log, so they
name the key id and algorithm, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from twilio.request_validator import get_signature_algorithm

from ingest.callback_request import CallbackRequest
from ingest.signature import SignatureChecker, Verifier

SETTINGS_HEADER = "HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS"
ALGORITHMS = ("HMAC_SHA1", "HMAC_SHA256")
# A hostile header is echoed into the log only this far.
_ECHO_LIMIT = 64


def settings_key_id(header: str) -> str:
    """The key id named in the settings header ("" when it names none)."""
    for part in header.split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "key":
            return value.strip()
    return ""


class SignatureSettingsVerifier:
    """Auth-token signatures, and shared-key ones for the requests that say so."""

    def __init__(
        self, public_url: str, auth_tokens: Verifier, shared_keys: Iterable[tuple[str, str]]
    ) -> None:
        self.auth_tokens = auth_tokens
        # One checker per (key, algorithm): the validators are built once, not per request.
        self.checkers = {
            (key_id, algorithm): SignatureChecker(public_url, [secret], algorithm)
            for key_id, secret in shared_keys
            for algorithm in ALGORITHMS
        }
        self.configured = bool(self.checkers)

    def verify(self, request: CallbackRequest) -> str | None:
        header = request.environ.get(SETTINGS_HEADER)
        if not header:
            # Absent or empty: the legacy Auth Token signature, as twilio's own libraries do.
            return self.auth_tokens.verify(request)
        key_id = settings_key_id(header)
        # The same reading of the header as twilio-python's (HMAC_SHA1 when it names none).
        algorithm = get_signature_algorithm(header).upper()
        shown = f"key {key_id[:_ECHO_LIMIT]!r}"
        if not self.configured:
            return f"a shared-key signature ({shown}) while TWILIO_SHARED_KEYS is not set"
        if algorithm not in ALGORITHMS:
            return f"unsupported signature algorithm {algorithm[:_ECHO_LIMIT]!r} ({shown})"
        checker = self.checkers.get((key_id, algorithm))
        if checker is None:
            return f"a signature by unknown shared {shown} ({algorithm})"
        problem = checker.verify(request)
        return None if problem is None else f"{problem} (shared {shown}, {algorithm})"
