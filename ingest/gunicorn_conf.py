"""gunicorn settings from the environment.

Usage: gunicorn -c python:ingest.gunicorn_conf ingest.wsgi:app
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers measured fastest for this CPU-bound handler (HMAC + one Redis call).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def on_starting(server: object) -> None:
    """Check the configuration once in the master, before any worker forks."""
    from shared.bootstrap import web_settings

    web_settings()
