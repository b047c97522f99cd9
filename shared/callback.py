"""A status callback as the workers see it, parsed from a stream entry. Pure functions.

The ingress stores the raw request; parsing it again here keeps the ingress cheap. The audit
trail keeps the form text itself, so every field Twilio sends survives, including ones added
after this code was written, byte for byte.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from shared import stream

# \Z, not $: "$" also matches before a final newline, and "SM...%0A" would pass as a sid.
MESSAGE_SID_RE = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}\Z")
MAX_STATUS_LENGTH = 32


class MalformedCallback(ValueError):  # noqa: N818 - reads better at the raise site
    """The entry cannot become an event; it goes to the dead-letter store with this reason."""


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which tripled the
# cost of building one on the drain's hot path. Nothing mutates a Callback after parsing.
@dataclass(slots=True)
class Callback:
    stream_id: str
    message_sid: str
    status: str
    error_code: int | None
    error_message: str | None
    account_sid: str | None
    to: str | None
    from_: str | None
    messaging_service_sid: str | None
    idempotency_token: str | None
    received_at: float  # epoch seconds, stamped by the ingress when it acknowledged the callback
    carrier_done_at: datetime | None
    raw: str  # the callback's form exactly as Twilio sent it: POST body, or GET query string
    url_query: str | None = None  # the query string of a POST: identifiers put in the URL


def _unquote_plus(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    # Phone numbers (%2B) are nearly all the escapes Twilio sends; urllib's unquote costs ten
    # times more and was the largest single cost of the drain's parsing.
    if text.count("%") == text.count("%2B"):
        return text.replace("%2B", "+")
    return unquote(text)


def parse_form(data: bytes | str) -> dict[str, str | list[str]]:
    """Form body to a dict; a repeated key keeps all its values as a list.

    Same result as urllib's parse_qsl(keep_blank_values=True), at a fraction of the cost: most
    pieces of a Twilio body need no unquoting, and this runs once per callback in the drain."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    out: dict[str, str | list[str]] = {}
    for piece in text.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        if "%" in piece or "+" in piece:
            key = _unquote_plus(key)
            value = _unquote_plus(value)
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def missing_field_reason(fields: dict[str, Any]) -> str | None:
    """Why these fields are not a status callback, or None. The ingress uses it too."""
    sid = fields.get("MessageSid")
    status = fields.get("MessageStatus")
    if not sid:
        return "MessageSid is missing"
    if not isinstance(sid, str) or not MESSAGE_SID_RE.match(sid):
        return "MessageSid must be SM or MM followed by 32 hex characters"
    if not status:
        return "MessageStatus is missing"
    if not isinstance(status, str) or len(status) > MAX_STATUS_LENGTH:
        return f"MessageStatus must be one value of at most {MAX_STATUS_LENGTH} characters"
    return None


@lru_cache(maxsize=4096)  # minute resolution: the same few values, again and again
def parse_carrier_done(raw: str | None) -> datetime | None:
    """RawDlrDoneDate is the carrier's YYMMDDhhmm with no time zone; we store it as if UTC."""
    # strptime accepts single-digit fields, so "26011514" would parse as 2026-01-15 01:04.
    if not raw or len(raw) != 10 or not raw.isdigit() or not raw.isascii():
        return None
    yy = int(raw[0:2])
    # strptime's %y pivot: 69-99 are the 1900s. Slicing is ten times cheaper than strptime.
    year = 1900 + yy if yy >= 69 else 2000 + yy
    try:
        return datetime(
            year, int(raw[2:4]), int(raw[4:6]), int(raw[6:8]), int(raw[8:10]), tzinfo=UTC
        )
    except ValueError:
        return None


def _parse_error_code(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _first(value: str | list[str] | None) -> str | None:
    """A field's value, the first one if Twilio repeated it; empty counts as absent."""
    if value.__class__ is list:
        value = value[0]  # type: ignore[index]
    return value or None  # type: ignore[return-value]


def from_entry(stream_id: str, entry: dict[bytes, bytes]) -> Callback:
    """Parse one stream entry. Raises MalformedCallback with a reason an operator can act on."""
    # This runs once per callback in the drain: the common POST entry takes the short path.
    try:
        method_raw = entry.get(stream.F_METHOD)
        method = "POST" if method_raw is None else method_raw.decode("ascii")
        query_raw = entry.get(stream.F_QUERY)
        query = "" if query_raw is None else query_raw.decode("utf-8")
        token_raw = entry.get(stream.F_TOKEN)
        token = token_raw.decode("utf-8") if token_raw else None
        received = float(entry[stream.F_RECEIVED])
        if not math.isfinite(received):
            raise ValueError(f"receive time {received!r} is not a time")
        form = query if method == "GET" else entry.get(stream.F_BODY, b"").decode("utf-8")
        fields = parse_form(form)
    except KeyError as exc:
        raise MalformedCallback(f"stream entry lacks field {exc.args[0]!r}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedCallback(f"stream entry is not decodable: {exc}") from None

    reason = missing_field_reason(fields)
    if reason:
        raise MalformedCallback(reason)
    # A NUL can only come from a raw NUL or a %00 escape; checking the text avoids a field walk.
    if "\x00" in form or "%00" in form or "\x00" in query:
        raise MalformedCallback("contains NUL characters, which PostgreSQL cannot store")

    get = fields.get
    done = get("RawDlrDoneDate")
    return Callback(
        stream_id=stream_id,
        message_sid=fields["MessageSid"],  # type: ignore[arg-type]
        status=fields["MessageStatus"],  # type: ignore[arg-type]
        error_code=_parse_error_code(_first(get("ErrorCode"))),
        error_message=_first(get("ErrorMessage")) or _first(get("ChannelStatusMessage")),
        account_sid=_first(get("AccountSid")),
        to=_first(get("To")),
        from_=_first(get("From")),
        messaging_service_sid=_first(get("MessagingServiceSid")),
        idempotency_token=token,
        received_at=received,
        carrier_done_at=parse_carrier_done(_first(done)) if done else None,
        raw=form,
        url_query=query if query and method != "GET" else None,
    )
