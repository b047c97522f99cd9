"""Process start-up: load settings, stop with one line naming a missing one, set up logging."""

from __future__ import annotations

import sys

from shared.config import ConfigError, Settings, load_settings
from shared.logs import configure_logging


def _load(process: str, check: str, exit_code: int = 2) -> Settings:
    try:
        settings = load_settings()
        getattr(settings, check)()
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
