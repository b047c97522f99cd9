"""A status callback shaped and signed as Twilio sends it, and sending one.

The one implementation of the signature statuspipe's tests, benchmarks and `statuspipe
test-webhook` send: X-Twilio-Signature from the official `twilio` package's RequestValidator.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

SAMPLE_ACCOUNT = "AC" + "0" * 31 + "1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def random_message_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def status_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    """The fields every message status callback carries, plus `extra`."""
    return {
        "AccountSid": SAMPLE_ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+15005550001",
        "To": "+15005550006",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def sample_fields(sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
    """What Twilio Console's Test Webhook would send: a final status carries the carrier's date."""
    extra = {}
    if error_code is not None:
        extra["ErrorCode"] = str(error_code)
    if status in {"delivered", "undelivered"}:
        extra["RawDlrDoneDate"] = "2601151432"
    return status_form(sid, status, **extra)


def sign(token: str, url: str, fields: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST of `fields` to `url` (fragment removed, as Twilio does)."""
    return RequestValidator(token).compute_signature(url.split("#", 1)[0], fields)


def signed_headers(
    token: str, url: str, fields: dict[str, str], idempotency_token: str | None = None
) -> dict[str, str]:
    """The headers of Twilio's POST of `fields` to `url`, signed with `token`."""
    return {
        "Content-Type": FORM,
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": sign(token, url, fields),
        "I-Twilio-Idempotency-Token": idempotency_token or str(uuid.uuid4()),
    }


def send(
    url: str, fields: dict[str, str], token: str, signed_url: str | None = None, timeout: float = 5
) -> tuple[int, str]:
    """POST the callback; returns (HTTP status, body). Never raises for an HTTP error status."""
    body = urlencode(fields).encode()
    headers = signed_headers(token, signed_url or url, fields)
    request = urllib.request.Request(url.split("#", 1)[0], data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
