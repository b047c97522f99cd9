"""The one place statuspipe reads its environment.

Everything else takes a `Settings`; tests build one from a dict with `load_settings({...})`.
Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SIGNATURE_MODES = ("enforce", "log-only", "off")


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
    public_url: str = field(
        default="",
        metadata={
            "env": "PUBLIC_URL",
            "doc": "Scheme and host Twilio calls (e.g. https://hooks.example.com), "
            "used to rebuild the signed URL behind proxies.",
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
    log_level: str = field(default="INFO", metadata={"env": "LOG_LEVEL", "doc": "Log level."})
    log_json: bool = field(
        default=False, metadata={"env": "LOG_JSON", "doc": "One JSON object per log line."}
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
    "log_json": _parse_bool,
}


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
    return Settings(**values)


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows, for the README and `statuspipe config`."""
    rows = []
    for f in fields(Settings):
        default = f.default if f.default not in ("", None) else ""
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
