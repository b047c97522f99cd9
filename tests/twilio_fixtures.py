"""Callbacks shaped and signed exactly as Twilio sends them (RequestValidator.compute_signature)."""

from __future__ import annotations

import secrets
import time
import uuid
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from shared.callback import Callback

AUTH_TOKEN = "test_auth_token_0123456789abcdef"
SECONDARY_TOKEN = "secondary_token_fedcba9876543210"
ACCOUNT = "AC00000000000000000000000000000001"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def callback_fields(sid: str, status: str, **extra: str) -> dict[str, str]:
    fields = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "From": "+15005550001",
        "To": "+15005550006",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    fields.update(extra)
    return fields


def stored_callback(sid: str, status: str, stream_id: str) -> Callback:
    """A parsed callback as the drain hands it to store_batch, received now."""
    return Callback(
        stream_id=stream_id,
        message_sid=sid,
        status=status,
        error_code=None,
        error_message=None,
        account_sid=ACCOUNT,
        to=None,
        from_=None,
        messaging_service_sid=None,
        idempotency_token=None,
        received_at=time.time(),
        carrier_done_at=None,
        raw=urlencode(callback_fields(sid, status)),
    )


def signed_post(
    url: str, fields: dict[str, str], token: str = AUTH_TOKEN, idem: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a POST callback to `url`, as Twilio would send it."""
    signature = RequestValidator(token).compute_signature(url, fields)
    headers = {
        "Content-Type": FORM,
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": idem or str(uuid.uuid4()),
    }
    return urlencode(fields).encode(), headers


def signed_get_url(url: str, fields: dict[str, str], token: str = AUTH_TOKEN) -> tuple[str, str]:
    """Full URL and signature of a GET callback: Twilio signs the URL alone."""
    sep = "&" if "?" in url else "?"
    full = url + sep + urlencode(fields)
    return full, RequestValidator(token).compute_signature(full, {})
