"""Status callbacks as Twilio sends them: the form, the signature, the retries.

Signed with `RequestValidator(token).compute_signature(url_without_fragment, form)`, with
`I-Twilio-Idempotency-Token` and `User-Agent: TwilioProxy/1.1` (reference §1.2-1.4); the URL
fragment's connection overrides (`#rc=3&rp=ct,5xx&ct=2000&rt=3000`, reference §3.1) set the retries.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

from devtools.fake_twilio.resources import API_VERSION, DEFAULT_SENDER, Message, utc_now


@dataclass(frozen=True)
class SentCallback:
    """One attempt at a status callback: what was signed, where it went, what came back."""

    url: str  # as configured, fragment included
    signed_url: str  # what the signature covers: the URL without its fragment
    target_url: str  # where it was actually posted (after `routes`)
    form: dict[str, str]
    headers: dict[str, str]
    attempt: int
    status_code: int | None
    error: str | None


def callback_form(
    account_sid: str, message: Message, extra: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The form Twilio posts (reference §1.3/§1.4): legacy Sms* twins included."""
    form = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "From": message.from_ or DEFAULT_SENDER,
        "To": message.to,
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "MessageStatus": message.status,
        "SmsStatus": message.status,
    }
    if message.messaging_service_sid:
        form["MessagingServiceSid"] = message.messaging_service_sid
    if message.error_code is not None:
        form["ErrorCode"] = str(message.error_code)
    channel, _, address = message.to.partition(":")
    if address and not message.to.startswith("+"):
        form.update(ChannelPrefix=channel, ChannelToAddress=address)
    elif message.status in ("delivered", "undelivered"):
        # The carrier's DLR done date, minute precision, no zone (SMS/MMS only).
        form["RawDlrDoneDate"] = utc_now().strftime("%y%m%d%H%M")
    for name, value in (extra or {}).items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return form


def _strip_fragment(url: str) -> tuple[str, dict[str, str]]:
    """The URL Twilio requests and signs, and its connection overrides (`#rc=3&rp=ct,rt`)."""
    parts = urlsplit(url)
    overrides = dict(pair.split("=", 1) for pair in parts.fragment.split("&") if "=" in pair)
    return urlunsplit(parts._replace(fragment="")), overrides


def _should_retry(policy: set[str], status: int | None, error: Exception | None) -> bool:
    """Twilio's `rp` retry policy: ct (connect failure), rt (read timeout), 4xx, 5xx, all."""
    if "all" in policy:
        return error is not None or (status is not None and status >= 400)
    if isinstance(error, requests.ReadTimeout):
        return "rt" in policy
    if isinstance(error, requests.ConnectionError):  # ConnectTimeout included
        return "ct" in policy
    if status is not None and 400 <= status < 500:
        return "4xx" in policy
    return status is not None and status >= 500 and "5xx" in policy


class CallbackPoster:
    """Posts callbacks, keeps every attempt; `routes` maps a public base to the real listener."""

    def __init__(self, routes: Mapping[str, str] | None = None) -> None:
        self.routes = dict(routes or {})
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sent: list[SentCallback] = []

    @property
    def sent(self) -> list[SentCallback]:
        with self._lock:
            return list(self._sent)

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()  # a restarted fake opens fresh sessions

    def post(self, url: str, form: dict[str, str], auth_token: str) -> SentCallback:
        """Sign for `url` without its fragment, post (to its route), retry as the fragment says."""
        signed_url, overrides = _strip_fragment(url)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
            "X-Home-Region": "us1",
            # One token per callback, the same on its retries: what dedupe keys on.
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "X-Twilio-Signature": RequestValidator(auth_token).compute_signature(signed_url, form),
        }
        target = self._route(signed_url)
        retries = int(overrides.get("rc", 1))
        policy = set(overrides.get("rp", "ct").split(","))
        timeout = (int(overrides.get("ct", 5000)) / 1000, int(overrides.get("rt", 15000)) / 1000)
        body = urlencode(form)
        for attempt in range(1, retries + 2):
            status, error = None, None
            try:
                response = self._session().post(target, data=body, headers=headers, timeout=timeout)
                status = response.status_code
            except requests.RequestException as exc:
                error = exc
            sent = SentCallback(
                url,
                signed_url,
                target,
                dict(form),
                dict(headers),
                attempt,
                status,
                repr(error) if error else None,
            )
            with self._lock:
                self._sent.append(sent)
            if attempt > retries or not _should_retry(policy, status, error):
                return sent
        raise AssertionError("unreachable")  # pragma: no cover

    def _route(self, url: str) -> str:
        """Swap a public scheme+host for the listener's, keeping path and query."""
        parts = urlsplit(url)
        for public, actual in self.routes.items():
            public_parts = urlsplit(public)
            if (parts.scheme, parts.netloc) == (public_parts.scheme, public_parts.netloc):
                actual_parts = urlsplit(actual)
                return urlunsplit(
                    parts._replace(scheme=actual_parts.scheme, netloc=actual_parts.netloc)
                )
        return url

    def _session(self) -> requests.Session:
        """One keep-alive session per thread, closed on stop."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session
