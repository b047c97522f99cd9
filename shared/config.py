"""The one place statuspipe reads its environment.

Everything else takes a `Settings`; tests build one from a dict with `load_settings({...})`.
Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def _parse_shared_key_pairs(name: str, text: str) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    items = [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
    for number, item in enumerate(items, 1):
        key_id, eq, secret = item.partition("=")
        key_id = key_id.strip()
        # Never echo the entry: a typo can make the whole of it a secret.
        if not eq or not key_id or not secret.strip() or any(c.isspace() for c in key_id):
            raise ConfigError(f"{name} must be id=secret pairs; entry {number} is not")
        if key_id in pairs:
            raise ConfigError(f"{name} names key {key_id!r} twice")
        pairs[key_id] = secret.strip()
    return tuple(pairs.items())


def _parse_shared_keys(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """id=secret pairs, or a file of them, or a directory of files named by key id (a mounted
    Kubernetes secret)."""
    value = raw.strip()
    if "=" in value and not value.startswith(("/", ".")):
        return _parse_shared_key_pairs(name, value)
    path = Path(value)
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            text = ",".join(f"{p.name}={p.read_text().strip()}" for p in files)
        else:
            text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {value!r} ({exc.strerror})") from None
    pairs = _parse_shared_key_pairs(f"{name} ({value})", text)
    if not pairs:
        raise ConfigError(f"{name}: {value!r} holds no id=secret pairs")
    return pairs


def _parse_basic_auth(name: str, raw: str) -> str:
    user, colon, password = raw.strip().partition(":")
    if not colon or not user or not password:
        raise ConfigError(f"{name} must be user:pass")
    return raw.strip()


def _parse_origins(name: str, raw: str) -> tuple[str, ...]:
    origins = []
    for item in raw.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc
                              or parts.path):  # fmt: skip
            raise ConfigError(f"{name}: {origin!r} is not an origin like https://ops.example.com")
        origins.append(origin)
    return tuple(origins)


def _parse_rate_limit(name: str, raw: str) -> str:
    count, _, period = raw.strip().partition(" per ")
    if not count.strip().isdigit() or period.strip() not in ("second", "minute", "hour", "day"):
        raise ConfigError(f"{name} must be like '20 per minute', got {raw!r}")
    return raw.strip()


def _parse_timezone(name: str, raw: str) -> str:
    """An IANA zone name (Europe/Paris); checked at start, not at the first report."""
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{name} must be an IANA time zone like Europe/Paris, got {raw!r}"
        ) from None
    return value


def _parse_ratio(name: str, raw: str) -> float:
    value = _parse_float(name, raw, 0.0)
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{name} must be above 0 and at most 1, got {value}")
    return value


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
    twilio_shared_keys: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata={
            "env": "TWILIO_SHARED_KEYS",
            "doc": "Shared keys Twilio may sign callbacks with (Webhook Settings): id=secret pairs,"
            " comma-separated, or the path of a file of such pairs (or of a directory with one"
            " file per key id, as Kubernetes mounts a secret); read at start.",
        },
    )
    callback_basic_auth: str = field(
        default="",
        metadata={
            "env": "CALLBACK_BASIC_AUTH",
            "doc": "user:pass Twilio must send (HTTP Basic) on /twilio/status, as in a"
            " https://user:pass@host/twilio/status callback URL (empty: not asked).",
        },
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata={
            "env": "CORS_ORIGINS",
            "doc": "Origins (comma-separated, e.g. https://ops.example.com) whose browsers may call"
            " /api/*; empty: no cross-origin access.",
        },
    )
    api_unauthenticated_limit: str = field(
        default="20 per minute",
        metadata={
            "env": "API_UNAUTHENTICATED_LIMIT",
            "doc": "Requests without a valid API token one client may make to /api/* (counted in"
            " Redis) before it gets 429, e.g. '20 per minute'.",
        },
    )
    report_timezone: str = field(
        default="UTC",
        metadata={
            "env": "REPORT_TIMEZONE",
            "doc": "IANA time zone whose calendar days the delivery report and the drop alert"
            " count in (a message belongs to the day of its created_at there).",
        },
    )
    drop_check_interval_seconds: float = field(
        default=3600.0,
        metadata={
            "env": "DROP_CHECK_INTERVAL",
            "doc": "Seconds between two runs of the delivery-rate drop check (the `beat` role).",
        },
    )
    drop_alert_ratio: float = field(
        default=0.9,
        metadata={
            "env": "DROP_ALERT_RATIO",
            "doc": "Alert when the last complete day's delivery rate is below this times the"
            " rate of the 7 days before it (0 < ratio <= 1).",
        },
    )
    drop_alert_min_messages: int = field(
        default=100,
        metadata={
            "env": "DROP_ALERT_MIN_MESSAGES",
            "doc": "No drop alert when the day, or the 7 days before it together, have fewer"
            " settled messages (delivered, read, undelivered, failed) than this.",
        },
    )
    reconcile_after_hours: float = field(
        default=12.0,
        metadata={
            "env": "RECONCILE_AFTER_HOURS",
            "doc": "A message still not final this long after its last status is fetched from"
            " Twilio (its callback may be lost); also the wait before fetching it again.",
        },
    )
    reconcile_max_age_days: float = field(
        default=3.0,
        metadata={
            "env": "RECONCILE_MAX_AGE_DAYS",
            "doc": "Messages created longer ago than this are no longer fetched (a carrier that"
            " never sends a delivery receipt leaves them `sent` for good).",
        },
    )
    reconcile_interval_seconds: float = field(
        default=3600.0,
        metadata={
            "env": "RECONCILE_INTERVAL",
            "doc": "Seconds between two reconciliation runs (the `beat` role).",
        },
    )
    reconcile_limit: int = field(
        default=500,
        metadata={
            "env": "RECONCILE_LIMIT",
            "doc": "Messages fetched from Twilio per reconciliation run at most (rate-limited by"
            " TWILIO_MAX_RPS); the rest wait for the next run.",
        },
    )
    changes_stream_key: str = field(
        default="statuspipe:changes",
        metadata={
            "env": "CHANGES_STREAM_KEY",
            "doc": "Redis stream of stored status changes, read by /api/stream and /api/changes.",
        },
    )
    changes_retention_seconds: int = field(
        default=900,
        metadata={
            "env": "CHANGES_RETENTION_SECONDS",
            "doc": "Status changes are kept at least this long for resuming streams and polling"
            " (Redis memory: about 150 bytes per change).",
        },
    )
    stream_max_per_process: int = field(
        default=500,
        metadata={
            "env": "STREAM_MAX_PER_PROCESS",
            "doc": "Open /api/stream connections one web process holds (a socket each, written"
            " by one thread per process; mind the open-files limit); past it a new stream is"
            " answered 503.",
        },
    )
    metrics_token: str = field(
        default="",
        metadata={
            "env": "METRICS_TOKEN",
            "doc": "Bearer token Prometheus must send to GET /metrics (empty: /metrics is open;"
            " set it when the web process is reachable from the internet, as on Heroku).",
        },
    )
    ledger_retention_hours: int = field(
        default=72,
        metadata={
            "env": "LEDGER_RETENTION_HOURS",
            "doc": "How long the ingress's ledger of acknowledged callbacks (per minute: a count"
            " and digests, in Redis) is kept for `statuspipe verify`.",
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
    "twilio_shared_keys": lambda n, r: _parse_shared_keys(n, r),
    "callback_basic_auth": lambda n, r: _parse_basic_auth(n, r),
    "cors_origins": lambda n, r: _parse_origins(n, r),
    "api_unauthenticated_limit": lambda n, r: _parse_rate_limit(n, r),
    "report_timezone": lambda n, r: _parse_timezone(n, r),
    "drop_check_interval_seconds": lambda n, r: _parse_float(n, r, 1.0),
    "drop_alert_ratio": lambda n, r: _parse_ratio(n, r),
    "drop_alert_min_messages": lambda n, r: _parse_int(n, r, 1),
    "reconcile_after_hours": lambda n, r: _parse_float(n, r, 0.0),
    "reconcile_max_age_days": lambda n, r: _parse_float(n, r, 0.01),
    "reconcile_interval_seconds": lambda n, r: _parse_float(n, r, 1.0),
    "reconcile_limit": lambda n, r: _parse_int(n, r, 1),
    "changes_retention_seconds": lambda n, r: _parse_int(n, r, 60),
    "stream_max_per_process": lambda n, r: _parse_int(n, r, 0),
    "ledger_retention_hours": lambda n, r: _parse_int(n, r, 1),
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
        default = f.default if f.default not in ("", None, ()) else ""
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
