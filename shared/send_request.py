"""What a request to send a message must look like, and the StatusCallback it gets. Pure.

The HTTP API (`POST /api/messages`), `statuspipe send` and the resends of the actions role all
build a `SendRequest` here, so a message is checked the same way whichever door it came in by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all. A
# WhatsApp address is the same number behind the channel prefix Twilio uses.
E164_RE = re.compile(r"\A(whatsapp:)?\+[1-9][0-9]{1,14}\Z")
MESSAGING_SERVICE_RE = re.compile(r"\AMG[0-9a-fA-F]{32}\Z")
MAX_BODY_CHARS = 1600  # Twilio refuses longer bodies (21617)
MAX_MEDIA = 10  # Twilio's limit on MediaUrl per message
FIELDS = ("to", "body", "from", "messaging_service_sid", "media_url", "force")
# The query parameter that carries statuspipe's own id in the StatusCallback URL. Twilio signs
# the query, so it cannot be altered, and it comes back even before `create` has returned.
ID_PARAM = "statuspipe_id"
CALLBACK_PATH = "/twilio/status"


class InvalidSendRequest(ValueError):  # noqa: N818 - reads better at the raise site
    """A field is missing, unknown or malformed: a 422 naming the field."""

    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class SendRequest:
    to: str
    body: str | None
    from_: str | None
    messaging_service_sid: str | None
    media_urls: tuple[str, ...] = field(default=())
    force: bool = False


def parse_send_request(doc: Any) -> SendRequest:
    """A JSON object as sent to `POST /api/messages`; raises InvalidSendRequest on the first
    problem, naming the field."""
    if not isinstance(doc, Mapping):
        raise InvalidSendRequest(None, "the body must be a JSON object")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        allowed = ", ".join(FIELDS)
        raise InvalidSendRequest(unknown[0], f"unknown field {unknown[0]!r} (allowed: {allowed})")
    to = _text(doc, "to")
    if not to:
        raise InvalidSendRequest("to", "to is required")
    if not E164_RE.match(to):
        raise InvalidSendRequest(
            "to", f"to must be an E.164 number such as +15005550006, got {to!r}"
        )
    sender = _text(doc, "from")
    service = _text(doc, "messaging_service_sid")
    if bool(sender) == bool(service):
        raise InvalidSendRequest("from", "give exactly one of from and messaging_service_sid")
    if service and not MESSAGING_SERVICE_RE.match(service):
        raise InvalidSendRequest(
            "messaging_service_sid",
            "messaging_service_sid must be MG followed by 32 hex characters",
        )
    media = _media(doc.get("media_url"))
    body = _text(doc, "body")
    if not body and not media:
        raise InvalidSendRequest("body", "body must not be empty unless media_url is given")
    if body and len(body) > MAX_BODY_CHARS:
        raise InvalidSendRequest("body", f"body is over {MAX_BODY_CHARS} characters")
    force = doc.get("force", False)
    if not isinstance(force, bool):
        raise InvalidSendRequest("force", "force must be true or false")
    return SendRequest(to, body or None, sender or None, service or None, media, force)


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSendRequest(name, f"{name} must be a string")
    # Not stripped: " +1500..." is not a number Twilio accepts either, so it is not one here.
    return value


def _media(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSendRequest("media_url", "media_url must be a list of URLs")
    if len(value) > MAX_MEDIA:
        raise InvalidSendRequest("media_url", f"at most {MAX_MEDIA} media URLs")
    for url in value:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidSendRequest("media_url", f"not an http(s) URL: {url!r}")
    return tuple(value)


def status_callback_url(public_url: str, outbound_id: int, overrides: str) -> str:
    """The StatusCallback for one send: statuspipe's id in the (signed) query, Twilio's
    connection overrides in the fragment (never sent, never signed)."""
    url = f"{public_url.rstrip('/')}{CALLBACK_PATH}?{ID_PARAM}={outbound_id}"
    return f"{url}#{overrides}" if overrides else url


def outbound_id_from_query(query: str | None) -> int | None:
    """statuspipe's id from a callback's URL query, if it carries one."""
    if not query:
        return None
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        if key == ID_PARAM and value.isdigit():
            return int(value)
    return None
