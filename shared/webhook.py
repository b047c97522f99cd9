"""Build and send a correctly signed sample status callback, as Twilio Console's Test Webhook."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

SAMPLE_ACCOUNT = "AC" + "0" * 31 + "1"


def random_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sample_fields(sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
    fields = {
        "AccountSid": SAMPLE_ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+15005550001",
        "To": "+15005550006",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    if error_code is not None:
        fields["ErrorCode"] = str(error_code)
    if status in {"delivered", "undelivered"}:
        fields["RawDlrDoneDate"] = "2601151432"
    return fields


def sign(token: str, url: str, fields: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST of `fields` to `url` (fragment removed, as Twilio does)."""
    return RequestValidator(token).compute_signature(url.split("#", 1)[0], fields)


def send(
    url: str, fields: dict[str, str], token: str, signed_url: str | None = None, timeout: float = 5
) -> tuple[int, str]:
    """POST the callback; returns (HTTP status, body). Never raises for an HTTP error status."""
    body = urlencode(fields).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Twilio-Signature": sign(token, signed_url or url, fields),
    }
    request = urllib.request.Request(url.split("#", 1)[0], data=body, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
