"""What no log line of a statuspipe process may hold (issue 13): the secrets in its own
environment and full phone numbers. Every process a test starts through the `spawn` fixture
(tests/conftest.py) has its whole log searched when the test ends, so the whole suite, at
whatever log levels its tests choose, is covered; tests/integration/test_log_secrets.py adds a
run at DEBUG through every path that handles numbers and tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from shared.config import ConfigError, load_settings

_PLAIN = ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY", "TWILIO_API_KEY_SECRET", "API_TOKEN",
          "METRICS_TOKEN")  # fmt: skip
FULL_NUMBER = re.compile(r"(?:\+|%2[Bb])\d{8,15}(?!\d)")
MIN_SECRET = 8  # shorter values (test placeholders such as "x") would match anywhere


def secrets_of(env: Mapping[str, str]) -> set[str]:
    """The secret values a process was given (read as the process reads them, shared keys from
    a file or directory included; from the raw variables when its settings do not load)."""
    found = {env.get(name, "") for name in _PLAIN}
    found.add(env.get("CALLBACK_BASIC_AUTH", "").partition(":")[2])
    try:
        settings = load_settings(env)
    except ConfigError:
        found.update(p.partition("=")[2] for p in env.get("TWILIO_SHARED_KEYS", "").split(","))
    else:
        found.update(secret for _, secret in settings.twilio_shared_keys)
    for url in (env.get("SMTP_URL", ""), env.get("DATABASE_URL", ""), env.get("REDIS_URL", "")):
        password = urlsplit(url).password if url else None
        found.add(password or "")
    return {s.strip() for s in found if len(s.strip()) >= MIN_SECRET}


def leaks(text: str, secrets: set[str]) -> list[str]:
    """The offending lines, each described without repeating what it leaked."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(secret in line for secret in secrets):
            found.append(f"line {number}: a secret of the process's environment")
        elif FULL_NUMBER.search(line):
            found.append(f"line {number}: a full phone number")
    return found
