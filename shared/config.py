"""The one place statuspipe reads its environment.

Everything else takes a `Settings`; tests build one from a dict with `load_settings({...})`.
Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SIGNATURE_MODES = ("enforce", "log-only", "off")
# contact_update is missing on purpose: an unknown code says nothing about the recipient.
UNKNOWN_ERROR_CODE_ACTIONS = ("alert", "retry", "none")


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _parse_float(name: str, raw: str, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _parse_base_url(name: str, raw: str) -> str:
    """Scheme and host (and port) only: a path here would silently be dropped or doubled."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise ConfigError(f"{name} must be like http://127.0.0.1:8099, got {raw!r}")
    return f"{parts.scheme}://{parts.netloc}"


def normalize_database_url(url: str) -> str:
    """Heroku still hands out `postgres://`, which SQLAlchemy 1.4+ refuses."""
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


TLS_CERT_REQS = ("required", "optional", "none")


def normalize_redis_url(url: str, cert_reqs: str) -> str:
    """Put the TLS verification mode on a rediss:// URL, where redis-py and Celery read it.

    Heroku Redis hands out rediss:// URLs with self-signed certificates: REDIS_TLS_CERT_REQS=none.
    """
    if not url.startswith("rediss://") or "ssl_cert_reqs=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}ssl_cert_reqs={cert_reqs}"


@dataclass(frozen=True)
class Settings:
    """Every tunable of statuspipe. Field metadata `env` names the variable, `doc` explains it."""

    database_url: str = field(
        default="", metadata={"env": "DATABASE_URL", "doc": "PostgreSQL (or SQLite file) URL."}
    )
    redis_url: str = field(
        default="", metadata={"env": "REDIS_URL", "doc": "Redis holding the callback stream."}
    )
    redis_tls_cert_reqs: str = field(
        default="required",
        metadata={
            "env": "REDIS_TLS_CERT_REQS",
            "doc": "Certificate check on rediss:// URLs: required | optional | none"
            " (Heroku Redis: none).",
        },
    )
    twilio_account_sid: str = field(
        default="", metadata={"env": "TWILIO_ACCOUNT_SID", "doc": "Account for REST calls."}
    )
    twilio_auth_token: str = field(
        default="",
        metadata={"env": "TWILIO_AUTH_TOKEN", "doc": "Auth token that signs callbacks."},
    )
    twilio_auth_token_secondary: str = field(
        default="",
        metadata={
            "env": "TWILIO_AUTH_TOKEN_SECONDARY",
            "doc": "Second accepted token while rotating the primary.",
        },
    )
    twilio_api_base_url: str = field(
        default="",
        metadata={
            "env": "TWILIO_API_BASE_URL",
            "doc": "Send every Twilio REST call to this scheme and host instead of Twilio's"
            " (e.g. http://127.0.0.1:8099, the fake in tests and `make run`); empty: Twilio.",
        },
    )
    twilio_api_key_sid: str = field(
        default="",
        metadata={
            "env": "TWILIO_API_KEY_SID",
            "doc": "API key (SK...) for REST calls instead of the auth token; needs the secret.",
        },
    )
    twilio_api_key_secret: str = field(
        default="",
        metadata={"env": "TWILIO_API_KEY_SECRET", "doc": "Secret of TWILIO_API_KEY_SID."},
    )
    twilio_timeout_seconds: float = field(
        default=10.0,
        metadata={"env": "TWILIO_TIMEOUT", "doc": "Seconds one Twilio REST call may take."},
    )
    public_url: str = field(
        default="",
        metadata={
            "env": "PUBLIC_URL",
            "doc": "Scheme and host Twilio calls (e.g. https://hooks.example.com), "
            "used to rebuild the signed URL behind proxies.",
        },
    )
    act_on_failures: bool = field(
        default=True,
        metadata={
            "env": "ACT_ON_FAILURES",
            "doc": "Decide and carry out resends, alerts and contact updates for failed messages"
            " (false: the drain only records them).",
        },
    )
    callback_overrides: str = field(
        default="rc=3&rp=ct,rt,5xx&ct=2000&rt=3000",
        metadata={
            "env": "CALLBACK_CONNECTION_OVERRIDES",
            "doc": "Twilio connection overrides put in the fragment of the StatusCallback of every"
            " message statuspipe sends: retry on connect errors, read timeouts and 5xx (empty:"
            " Twilio's default, one retry on connect errors only).",
        },
    )
    retry_max_attempts: int = field(
        default=3,
        metadata={
            "env": "RETRY_MAX_ATTEMPTS",
            "doc": "Sends per original message, the first included, before a transient failure"
            " becomes an alert.",
        },
    )
    retry_backoff_seconds: float = field(
        default=5.0,
        metadata={
            "env": "RETRY_BACKOFF_SECONDS",
            "doc": "Base of the resend backoff: attempt n waits base x 2^(n-2) x (1..2, jitter).",
        },
    )
    twilio_max_rps: float = field(
        default=10.0,
        metadata={
            "env": "TWILIO_MAX_RPS",
            "doc": "REST calls per second to Twilio from all actions workers together.",
        },
    )
    action_stale_seconds: float = field(
        default=60.0,
        metadata={
            "env": "ACTION_STALE_SECONDS",
            "doc": "An action still pending this long after it was due is dispatched again by the"
            " sweeper (a worker died between commit and dispatch).",
        },
    )
    api_token: str = field(
        default="", metadata={"env": "API_TOKEN", "doc": "Bearer token for the read API."}
    )
    signature_mode: str = field(
        default="enforce",
        metadata={
            "env": "SIGNATURE_MODE",
            "doc": "enforce (403 on bad signature) | log-only | off (development only).",
        },
    )
    port: int = field(default=8000, metadata={"env": "PORT", "doc": "HTTP port of the ingress."})
    stream_key: str = field(
        default="statuspipe:callbacks",
        metadata={"env": "STREAM_KEY", "doc": "Redis stream the ingress appends to."},
    )
    consumer_group: str = field(
        default="statuspipe",
        metadata={"env": "CONSUMER_GROUP", "doc": "Consumer group the workers read with."},
    )
    max_backlog: int = field(
        default=1_000_000,
        metadata={
            "env": "INGEST_MAX_BACKLOG",
            "doc": "Unprocessed callbacks in Redis at which the ingress starts answering 503.",
        },
    )
    retry_after_seconds: int = field(
        default=5,
        metadata={"env": "INGEST_RETRY_AFTER", "doc": "Retry-After sent with a backlog 503."},
    )
    redis_timeout_seconds: float = field(
        default=0.5,
        metadata={
            "env": "INGEST_REDIS_TIMEOUT",
            "doc": "Time the ingress gives Redis to take one callback, connecting included;"
            " past it the answer is 503.",
        },
    )
    batch_size: int = field(
        default=1000,
        metadata={"env": "BATCH_SIZE", "doc": "Callbacks a worker takes per transaction."},
    )
    block_ms: int = field(
        default=1000,
        metadata={"env": "BLOCK_MS", "doc": "How long an idle worker waits on the stream."},
    )
    batch_linger_ms: int = field(
        default=50,
        metadata={
            "env": "BATCH_LINGER_MS",
            "doc": "When a read returns less than half a batch, wait this long for more before"
            " storing it: fewer, larger transactions under light load (0: store at once).",
        },
    )
    claim_idle_seconds: float = field(
        default=20.0,
        metadata={
            "env": "CLAIM_IDLE_SECONDS",
            "doc": "Callbacks held this long by a silent worker are taken over by another.",
        },
    )
    claim_interval_seconds: float = field(
        default=5.0,
        metadata={"env": "CLAIM_INTERVAL_SECONDS", "doc": "How often a worker looks for them."},
    )
    receipt_retention_hours: int = field(
        default=72,
        metadata={
            "env": "RECEIPT_RETENTION_HOURS",
            "doc": "How long stream ids are remembered to make redelivery harmless.",
        },
    )
    error_code_map_path: str = field(
        default="",
        metadata={
            "env": "ERROR_CODE_MAP_PATH",
            "doc": "TOML file whose entries replace or add to the shipped Twilio error-code map"
            " (shared/error_codes.toml); empty: the shipped map only.",
        },
    )
    unknown_error_code_action: str = field(
        default="alert",
        metadata={
            "env": "UNKNOWN_ERROR_CODE_ACTION",
            "doc": "What to do about an error code not in the map: alert | retry | none.",
        },
    )
    log_level: str = field(default="INFO", metadata={"env": "LOG_LEVEL", "doc": "Log level."})
    log_json: bool = field(
        default=False, metadata={"env": "LOG_JSON", "doc": "One JSON object per log line."}
    )
    alert_webhook_url: str = field(
        default="",
        metadata={
            "env": "ALERT_WEBHOOK_URL",
            "doc": "Alerts are POSTed here as JSON with a Slack-compatible `text` (empty: off).",
        },
    )
    alert_window_seconds: int = field(
        default=60,
        metadata={
            "env": "ALERT_WINDOW_SECONDS",
            "doc": "Alerts of one kind and code are grouped into one per window of this length.",
        },
    )
    smtp_url: str = field(
        default="",
        metadata={
            "env": "SMTP_URL",
            "doc": "Mail server for alert emails: smtp://user:pass@host:587?starttls=true or"
            " smtps://user:pass@host:465 (empty: no email).",
        },
    )
    alert_email_from: str = field(
        default="",
        metadata={"env": "ALERT_EMAIL_FROM", "doc": "Sender of alert emails (with SMTP_URL)."},
    )
    alert_email_to: str = field(
        default="",
        metadata={
            "env": "ALERT_EMAIL_TO",
            "doc": "Recipients of alert emails, comma-separated (with SMTP_URL).",
        },
    )
    alert_sink_timeout: float = field(
        default=5.0,
        metadata={
            "env": "ALERT_SINK_TIMEOUT",
            "doc": "Seconds an alert webhook or mail server has to answer before the send is"
            " retried.",
        },
    )

    @property
    def auth_tokens(self) -> tuple[str, ...]:
        return tuple(t for t in (self.twilio_auth_token, self.twilio_auth_token_secondary) if t)

    def require(self, *names: str) -> Settings:
        """Stop with a one-line message naming the first missing setting among `names`."""
        for f in fields(self):
            if f.name in names and getattr(self, f.name) in ("", None):
                env = f.metadata["env"]
                raise ConfigError(f"{env} is required but not set ({f.metadata['doc']})")
        return self

    def require_for_web(self) -> Settings:
        self.require("redis_url", "database_url", "api_token")
        if self.signature_mode != "off":
            self.require("twilio_auth_token", "public_url")
        return self

    def require_for_worker(self) -> Settings:
        return self.require("redis_url", "database_url")


_PARSERS: dict[str, Any] = {
    "twilio_api_base_url": lambda n, r: _parse_base_url(n, r),
    "twilio_timeout_seconds": lambda n, r: _parse_float(n, r, 0.01),
    "port": lambda n, r: _parse_int(n, r, 1),
    "max_backlog": lambda n, r: _parse_int(n, r, 1),
    "retry_after_seconds": lambda n, r: _parse_int(n, r, 0),
    "redis_timeout_seconds": lambda n, r: _parse_float(n, r, 0.01),
    "batch_size": lambda n, r: _parse_int(n, r, 1),
    "block_ms": lambda n, r: _parse_int(n, r, 1),
    "batch_linger_ms": lambda n, r: _parse_int(n, r, 0),
    "claim_idle_seconds": lambda n, r: _parse_float(n, r, 0.1),
    "claim_interval_seconds": lambda n, r: _parse_float(n, r, 0.1),
    "receipt_retention_hours": lambda n, r: _parse_int(n, r, 1),
    "act_on_failures": _parse_bool,
    "retry_max_attempts": lambda n, r: _parse_int(n, r, 1),
    "retry_backoff_seconds": lambda n, r: _parse_float(n, r, 0.0),
    "twilio_max_rps": lambda n, r: _parse_float(n, r, 0.1),
    "action_stale_seconds": lambda n, r: _parse_float(n, r, 1.0),
    "log_json": _parse_bool,
    "alert_window_seconds": lambda n, r: _parse_int(n, r, 1),
    "alert_sink_timeout": lambda n, r: _parse_float(n, r, 0.1),
}

ALERT_WEBHOOK_SCHEMES = ("http", "https")
SMTP_SCHEMES = ("smtp", "smtps")


def _check_alert_sinks(values: Mapping[str, Any]) -> None:
    """Stop at start on an alert destination that could never work, not at the first alert."""
    webhook = values.get("alert_webhook_url", "")
    if webhook and urlsplit(webhook).scheme not in ALERT_WEBHOOK_SCHEMES:
        raise ConfigError(f"ALERT_WEBHOOK_URL must be an http(s) URL, got {webhook!r}")
    smtp = values.get("smtp_url", "")
    if not smtp:
        return
    parts = urlsplit(smtp)
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, got {parts.scheme!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read.
    except ValueError:
        raise ConfigError("SMTP_URL has an invalid port") from None
    if not parts.hostname:
        raise ConfigError("SMTP_URL names no host")
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key != "starttls":
            raise ConfigError(f"SMTP_URL accepts only the starttls option, got {key!r}")
        _parse_bool("SMTP_URL starttls", raw)
    if not values.get("alert_email_from"):
        raise ConfigError("ALERT_EMAIL_FROM is required when SMTP_URL is set")
    if not values.get("alert_email_to", "").strip(" ,"):
        raise ConfigError("ALERT_EMAIL_TO is required when SMTP_URL is set")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `environ` (default: os.environ). Raises ConfigError on junk."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(f.metadata["env"])
        if raw is None or raw == "":
            continue
        parser = _PARSERS.get(f.name)
        values[f.name] = parser(f.metadata["env"], raw) if parser else raw.strip()
    if "database_url" in values:
        values["database_url"] = normalize_database_url(values["database_url"])
    if "public_url" in values:
        values["public_url"] = values["public_url"].rstrip("/")
    cert_reqs = values.get("redis_tls_cert_reqs", "required")
    if cert_reqs not in TLS_CERT_REQS:
        raise ConfigError(f"REDIS_TLS_CERT_REQS must be one of {', '.join(TLS_CERT_REQS)}")
    if "redis_url" in values:
        values["redis_url"] = normalize_redis_url(values["redis_url"], cert_reqs)
    mode = values.get("signature_mode", "enforce")
    if mode not in SIGNATURE_MODES:
        allowed = ", ".join(SIGNATURE_MODES)
        raise ConfigError(f"SIGNATURE_MODE must be one of {allowed}, got {mode!r}")
    unknown_action = values.get("unknown_error_code_action", "alert")
    if unknown_action not in UNKNOWN_ERROR_CODE_ACTIONS:
        allowed = ", ".join(UNKNOWN_ERROR_CODE_ACTIONS)
        raise ConfigError(
            f"UNKNOWN_ERROR_CODE_ACTION must be one of {allowed}, got {unknown_action!r}"
        )
    _check_alert_sinks(values)
    return Settings(**values)


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows, for the README and `statuspipe config`."""
    rows = []
    for f in fields(Settings):
        default = f.default if f.default not in ("", None) else ""
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
