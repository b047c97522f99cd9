"""Callbacks shaped and signed exactly as Twilio sends them, through the one implementation
(`cli.sample_callback`, RequestValidator.compute_signature), with the tests' tokens."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from cli.sample_callback import FORM, SAMPLE_ACCOUNT, sign, signed_headers, status_form
from cli.sample_callback import random_message_sid as new_sid
from shared.callback import Callback

__all__ = ["FORM", "new_sid"]

AUTH_TOKEN = "test_auth_token_0123456789abcdef"
SECONDARY_TOKEN = "secondary_token_fedcba9876543210"
ACCOUNT = SAMPLE_ACCOUNT


def callback_fields(sid: str, status: str, **extra: str) -> dict[str, str]:
    return status_form(sid, status, **extra)


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
    return urlencode(fields).encode(), signed_headers(token, url, fields, idem)


def signed_get_url(url: str, fields: dict[str, str], token: str = AUTH_TOKEN) -> tuple[str, str]:
    """Full URL and signature of a GET callback: Twilio signs the URL alone."""
    sep = "&" if "?" in url else "?"
    full = url + sep + urlencode(fields)
    return full, sign(token, full, {})
