"""Twilio's REST resources as the fake keeps and shows them: shapes, checks, paging.

Pure functions and records; shapes follow Twilio's OpenAPI description (/work/shared/twilio-oai:
`api.v2010.account.message`, `api.v2010.account.incoming_phone_number`, the list envelope) and
twilio-python's `messaging.v1.ServiceInstance`.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

# Defaults match tests/twilio_fixtures.py, so fixtures and fake agree without configuration.
DEFAULT_ACCOUNT_SID = "AC00000000000000000000000000000001"
DEFAULT_AUTH_TOKEN = "test_auth_token_0123456789abcdef"  # noqa: S105 - the docs' test vector
# Twilio's magic test number that is a valid sender; used when a Messaging Service picks one.
DEFAULT_SENDER = "+15005550006"
API_VERSION = "2010-04-01"
MAX_BODY = 1600
ACCOUNT_URI = "/2010-04-01/Accounts"
MESSAGING_V1 = "https://messaging.twilio.com/v1"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# whatsapp:+1..., messenger:123, rcs:sender ...: Twilio's channel addresses.
CHANNEL_ADDRESS = re.compile(r"^[a-z]+:\S+$")
SHORT_CODE = re.compile(r"^\d{3,8}$")
# Alphanumeric sender IDs: up to 11 letters, digits and spaces, at least one letter.
ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
# GSM 03.38: the basic set costs one septet, the extension set two; anything else means UCS-2.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
# Codes Twilio answers with for plain HTTP trouble, for faults scripted without a code.
DEFAULT_ERROR_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
DEFAULT_ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
}
# Fields of a phone number an update may set (the OAI's UpdateIncomingPhoneNumberRequest, the
# ones a messaging app uses). A number has no *message* status callback: its StatusCallback is
# for calls; message callbacks come from the message or its Messaging Service.
NUMBER_FIELDS = {
    "FriendlyName": "friendly_name",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
    "SmsApplicationSid": "sms_application_sid",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
}
SERVICE_FIELDS = {
    "FriendlyName": "friendly_name",
    "StatusCallback": "status_callback",
    "InboundRequestUrl": "inbound_request_url",
    "InboundMethod": "inbound_method",
    "FallbackUrl": "fallback_url",
    "FallbackMethod": "fallback_method",
    "ValidityPeriod": "validity_period",
}
SERVICE_FLAGS = {
    "StickySender": "sticky_sender",
    "MmsConverter": "mms_converter",
    "SmartEncoding": "smart_encoding",
    "FallbackToLongCode": "fallback_to_long_code",
    "AreaCodeGeomatch": "area_code_geomatch",
    "SynchronousValidation": "synchronous_validation",
}


class TwilioError(Exception):
    """An answer in Twilio's error shape; raised inside the fake, turned into the HTTP reply."""

    def __init__(self, status: int, code: int, message: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message or DEFAULT_ERROR_MESSAGES.get(code, f"Error {code}")
        super().__init__(f"{status} {code} {self.message}")

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `form` keeps repeated fields (MediaUrl) in order."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    username: str | None

    def value(self, name: str) -> str | None:
        """The first value of form field (or, failing that, query parameter) `name`."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else None


@dataclass
class Message:
    """A stored message. `form` is the create request's form (None for seeded messages)."""

    sid: str
    to: str
    from_: str | None
    body: str
    media_urls: tuple[str, ...]
    messaging_service_sid: str | None
    status_callback: str | None
    status: str
    date_created: datetime
    date_sent: datetime | None
    date_updated: datetime
    num_segments: int
    error_code: int | None = None
    form: dict[str, list[str]] | None = None
    seq: int = 0


@dataclass
class PhoneNumber:
    sid: str
    phone_number: str
    fields: dict[str, Any]
    date_created: datetime
    date_updated: datetime


@dataclass
class MessagingService:
    sid: str
    fields: dict[str, Any]
    phone_numbers: list[str]
    date_created: datetime
    date_updated: datetime


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(moment: datetime | None) -> str | None:
    """The v2010 API's date format: `Fri, 24 May 2019 17:44:46 +0000`."""
    return format_datetime(moment) if moment else None


def _iso8601(moment: datetime) -> str:
    """The v1 APIs' (messaging.twilio.com) date format: `2015-07-30T20:12:31Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def count_segments(body: str) -> int:
    """SMS segments Twilio bills `body` as: 160/153 GSM-7 septets or 70/67 UCS-2 units."""
    if not body:
        return 1
    if set(body) <= GSM7_BASIC | GSM7_EXTENSION:
        units = len(body) + sum(ch in GSM7_EXTENSION for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def valid_callback_url(url: str) -> bool:
    """Twilio's rule for StatusCallback: absolute http(s), a hostname without underscores."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and bool(host) and "_" not in host


def parse_date_filter(name: str, raw: str) -> date | datetime:
    """A DateSent filter value: a GMT day, or a moment in any format Twilio's examples use.

    Twilio documents these filters as GMT dates; twilio-python sends a `date` as midnight
    (`2026-01-02T00:00:00Z`), so midnight reads as the whole day. Any other time of day is
    compared as a moment (what a reconcile "sent since the failed attempt" needs).
    """
    value = raw.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise TwilioError(400, 20001, f"Invalid {name}: {raw}") from None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.date() if moment.time() == time() else moment


def matches_date(sent: datetime | None, op: str, bound: date | datetime) -> bool:
    """`DateSent` is that day; `DateSent<` on or before, `DateSent>` on or after."""
    if sent is None:
        return False
    if op == "=" or not isinstance(bound, datetime):
        value: date | datetime = sent.date()
        bound = bound.date() if isinstance(bound, datetime) else bound
    else:
        value = sent
    if op == "<":
        return value <= bound
    if op == ">":
        return value >= bound
    return value == bound


def validate_create(form: Mapping[str, list[str]], services: Iterable[str]) -> None:
    """Twilio's checks on a create, in its order, with its codes; `services`: sids that exist."""
    to, sender = first(form, "To"), first(form, "From")
    service = first(form, "MessagingServiceSid")
    body, callback = first(form, "Body"), first(form, "StatusCallback")
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not (E164.match(to) or CHANNEL_ADDRESS.match(to)):
        raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not sender and not service:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if sender and not any(
        p.match(sender) for p in (E164, CHANNEL_ADDRESS, SHORT_CODE, ALPHA_SENDER)
    ):
        raise TwilioError(400, 21212, f"Invalid 'From' Phone Number: {sender}")
    # A well-formed but unknown sid is refused too: a test that forgot to seed it.
    if service and (not SERVICE_SID.match(service) or service not in services):
        raise TwilioError(400, 21705, f"The Messaging Service Sid {service} is invalid.")
    if not body and not form.get("MediaUrl") and not first(form, "ContentSid"):
        if service:
            raise TwilioError(
                400, 21619, "A text message body, media URL or content SID is required."
            )
        raise TwilioError(400, 21602, "Message body is required.")
    if body and len(body) > MAX_BODY:
        raise TwilioError(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    if callback is not None and not valid_callback_url(callback):
        raise TwilioError(400, 21609, f"Invalid 'StatusCallback': {callback}")


def message_json(account_sid: str, message: Message) -> dict[str, Any]:
    """`api.v2010.account.message` with the OAI's types (counts are strings)."""
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{message.sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": _rfc2822(message.date_created),
        "date_sent": _rfc2822(message.date_sent),
        "date_updated": _rfc2822(message.date_updated),
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": f"{uri}/Media.json",
            "feedback": f"{uri}/Feedback.json",
        },
        "to": message.to,
        "uri": f"{uri}.json",
    }


def number_json(account_sid: str, number: PhoneNumber) -> dict[str, Any]:
    fields = number.fields
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": _rfc2822(number.date_created),
        "date_updated": _rfc2822(number.date_updated),
        "friendly_name": fields.get("friendly_name"),
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": fields.get("sms_application_sid", ""),
        "sms_fallback_method": fields.get("sms_fallback_method", "POST"),
        "sms_fallback_url": fields.get("sms_fallback_url", ""),
        "sms_method": fields.get("sms_method", "POST"),
        "sms_url": fields.get("sms_url", ""),
        "status_callback": fields.get("status_callback", ""),
        "status_callback_method": fields.get("status_callback_method", "POST"),
        "voice_method": fields.get("voice_method", "POST"),
        "voice_url": fields.get("voice_url"),
        "status": "in-use",
        "type": "local",
        "uri": f"{ACCOUNT_URI}/{account_sid}/IncomingPhoneNumbers/{number.sid}.json",
    }


def service_json(account_sid: str, service: MessagingService) -> dict[str, Any]:
    fields = service.fields
    url = f"{MESSAGING_V1}/Services/{service.sid}"
    validity = fields.get("validity_period")
    return {
        "sid": service.sid,
        "account_sid": account_sid,
        "friendly_name": fields.get("friendly_name"),
        "date_created": _iso8601(service.date_created),
        "date_updated": _iso8601(service.date_updated),
        "inbound_request_url": fields.get("inbound_request_url"),
        "inbound_method": fields.get("inbound_method", "POST"),
        "fallback_url": fields.get("fallback_url"),
        "fallback_method": fields.get("fallback_method", "POST"),
        "status_callback": fields.get("status_callback"),
        **{key: fields.get(key, key == "sticky_sender") for key in SERVICE_FLAGS.values()},
        "scan_message_content": "inherit",
        "validity_period": int(validity) if validity else 36000,
        "url": url,
        "links": {"phone_numbers": f"{url}/PhoneNumbers"},
        "usecase": "undeclared",
        "us_app_to_person_registered": False,
        "use_inbound_webhook_on_number": False,
    }


def service_number_json(
    account_sid: str, service: MessagingService, number_sid: str, phone_number: str
) -> dict[str, Any]:
    """`messaging.v1.service.phone_number`: one number of a service's sender pool."""
    return {
        "sid": number_sid,
        "account_sid": account_sid,
        "service_sid": service.sid,
        "date_created": _iso8601(service.date_created),
        "date_updated": _iso8601(service.date_updated),
        "phone_number": phone_number,
        "country_code": "US",
        "capabilities": ["SMS", "MMS", "Voice"],
        "url": f"{MESSAGING_V1}/Services/{service.sid}/PhoneNumbers/{number_sid}",
    }


def v1_list_page(
    path: str, key: str, rows: list[dict[str, Any]], query: Mapping[str, str]
) -> dict[str, Any]:
    """The v1 APIs' list envelope: the rows under `key`, paging in `meta` with absolute URLs
    (twilio-python finds the rows through `meta.key` and follows `meta.next_page_url`)."""
    size = min(int(query.get("PageSize", 50)), 1000)
    page = int(query.get("Page", 0))
    start = page * size

    def url(number: int) -> str:
        return f"{MESSAGING_V1}{path.removeprefix('/v1')}?PageSize={size}&Page={number}"

    return {
        key: rows[start : start + size],
        "meta": {
            "page": page,
            "page_size": size,
            "first_page_url": url(0),
            "previous_page_url": url(page - 1) if page > 0 else None,
            "url": url(page),
            "next_page_url": url(page + 1) if start + size < len(rows) else None,
            "key": key,
        },
    }


def check_urls(form: Mapping[str, list[str]], names: Iterable[str]) -> None:
    for name in names:
        value = first(form, name)
        if value and not valid_callback_url(value):
            raise TwilioError(
                400, 21609 if name == "StatusCallback" else 21502, f"Invalid {name}: {value}"
            )


def list_page(
    path: str,
    key: str,
    rows: list[dict[str, Any]],
    filters: list[tuple[str, str]],
    query: dict[str, str],
) -> dict[str, Any]:
    """Twilio's list envelope. PageToken is `PA` + the sid of the previous page's last row, so
    rows added meanwhile (newest first) neither repeat nor shift the next page."""
    size = min(int(query.get("PageSize", 50)), 1000)
    page = int(query.get("Page", 0))
    start = page * size
    token = query.get("PageToken", "")
    if token.startswith("PA"):
        after = [i for i, row in enumerate(rows) if row["sid"] == token[2:]]
        start = after[0] + 1 if after else start
    chunk = rows[start : start + size]

    def uri(number: int, page_token: str | None = None) -> str:
        params = [*filters, ("PageSize", str(size)), ("Page", str(number))]
        if page_token:
            params.append(("PageToken", page_token))
        return f"{path}?{urlencode(params)}"

    more = start + size < len(rows)
    return {
        key: chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, "PA" + chunk[-1]["sid"]) if more and chunk else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page, token or None),
    }
