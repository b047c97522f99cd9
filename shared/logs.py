"""Logging for every statuspipe process: plain lines for people, JSON lines for log pipelines."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

from shared.config import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


# An E.164 number (also %2B-escaped, as in a logged URL): all but its last 4 digits are masked.
_PHONE_RE = re.compile(r"(\+|%2[Bb])(\d{4,11})(\d{4})(?!\d)")
_MIN_SECRET = 6  # shorter "secrets" would mask ordinary words
TWILIO_SDK_LOGGER = "twilio.http_client"


def mask_number(number: str | None) -> str:
    """+15005550006 -> +*******0006: enough to tell numbers apart in a log, not to call one."""
    if not number:
        return ""
    digits = sum(c.isdigit() for c in number)
    if digits <= 4:
        return number
    masked, seen = [], 0
    for c in number:
        if c.isdigit():
            seen += 1
            masked.append("*" if seen <= digits - 4 else c)
        else:
            masked.append(c)
    return "".join(masked)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret the settings hold: tokens, shared-key secrets, passwords in URLs."""
    found = [
        settings.twilio_auth_token,
        settings.twilio_auth_token_secondary,
        settings.twilio_api_key_secret,
        settings.api_token,
        settings.callback_basic_auth.partition(":")[2],
        *(secret for _, secret in settings.twilio_shared_keys),
    ]
    for url in (settings.database_url, settings.redis_url, settings.smtp_url):
        password = urlsplit(url).password if url else None
        found.append(password or "")
    return [s for s in found if len(s) >= _MIN_SECRET]


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter: the finished line (message, exception, any library's text) has every
    known secret replaced and phone numbers masked, at every level, whoever logged it."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner
        # Longest first: a secret that contains another is replaced whole.
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, "[redacted]")
        return _PHONE_RE.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], line)


def configure_logging(settings: Settings, process: str) -> None:
    """Idempotent: replaces the root handlers so gunicorn, Celery and the CLI all log alike."""
    handler = logging.StreamHandler(sys.stderr)
    inner: logging.Formatter
    if settings.log_json:
        inner = JsonFormatter()
    else:
        inner = logging.Formatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s")
    handler.setFormatter(RedactingFormatter(inner, settings_secrets(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # The twilio SDK logs every REST request and response at INFO, headers included: eleven
    # lines per call, 70% of the actions role's log. Shown at LOG_LEVEL=DEBUG only.
    sdk = logging.getLogger(TWILIO_SDK_LOGGER)
    sdk.setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
