"""Process start-up: settings and the error-code map (one line and exit if bad), then logging."""

from __future__ import annotations

import functools
import sys

from shared.config import ConfigError, Settings, load_settings
from shared.error_codes import ErrorCodeMap, load_error_codes
from shared.logs import configure_logging


def _load(process: str, check: str, exit_code: int = 2) -> Settings:
    try:
        settings = load_settings()
        getattr(settings, check)()
        # Loaded here so that a bad map stops the process at start, not at the first failure.
        error_code_map(settings)
    except ConfigError as exc:
        print(f"statuspipe {process}: {exc}", file=sys.stderr)
        raise SystemExit(exit_code) from None
    configure_logging(settings, process)
    return settings


def web_settings() -> Settings:
    # A gunicorn worker exiting with 3 (WORKER_BOOT_ERROR) makes the master halt instead of
    # respawning it forever.
    return _load("web", "require_for_web", exit_code=3)


def worker_settings() -> Settings:
    return _load("worker", "require_for_worker")


def error_code_map(settings: Settings) -> ErrorCodeMap:
    """The process's error-code map, read from disk once per process and settings."""
    return _cached_map(settings.error_code_map_path, settings.unknown_error_code_action)


@functools.cache
def _cached_map(override_path: str, default_action: str) -> ErrorCodeMap:
    return load_error_codes(override_path or None, default_action)
