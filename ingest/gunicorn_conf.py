"""gunicorn settings from the environment.

Usage: gunicorn -c python:ingest.gunicorn_conf ingest.wsgi:app
"""

import multiprocessing
import os
import shutil
import socket
import tempfile
import time
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
# gunicorn's sync worker, which hands open /api/stream connections to a thread of their own
# instead of holding them (ingest/web_worker.py): callbacks keep the fastest worker class, and
# open streams never take it away from them (docs/benchmarks.md: the ingress ratio).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "ingest.web_worker.Worker")
# Only for another GUNICORN_WORKER_CLASS (gthread); that one serves no streams (503).
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
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
    _fresh_metrics_dir()


# A sync worker that accepts a connection waits on it until its request arrives, so a client
# that connects first and sends later (a pre-connecting proxy, wrk pacing its requests) keeps a
# worker idle meanwhile, and the requests behind it wait: eight connections that sent nothing
# held both processes of a test's web until gunicorn's timeout killed them (30 s). With
# TCP_DEFER_ACCEPT the kernel hands a connection to accept() only once its first bytes are in
# (after about this long, as it is: ingest/web_worker.py then closes it if it stays silent).
DEFER_ACCEPT_SECONDS = 10


def when_ready(server: Any) -> None:
    for listener in server.LISTENERS:
        sock = listener.sock
        if sock.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "TCP_DEFER_ACCEPT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)


def pre_fork(server: object, worker: Any) -> None:
    worker.statuspipe_forked = time.monotonic()


def post_worker_init(worker: Any) -> None:
    """Each worker loads the app after the fork (about 2 s of CPU on a slow host): until every
    one has said it is ready, the others share the CPU with imports (bench/ingress.py waits
    for these lines)."""
    loaded = time.monotonic() - getattr(worker, "statuspipe_forked", time.monotonic())
    worker.log.info("%s %d (app loaded in %.1f s)", READY, worker.pid, loaded)


READY = "statuspipe web worker ready:"

# prometheus_client's multiprocess mode (ingest/metrics/): every worker process writes its
# counters to files in this directory and GET /metrics, in whichever worker, sums them all. A
# fresh directory per master: files left by an earlier run would add their counts to this one's.
_metrics_dir = ""


def _fresh_metrics_dir() -> None:
    global _metrics_dir  # one per master process, read by on_exit
    _metrics_dir = tempfile.mkdtemp(prefix="statuspipe-metrics-")
    # Inherited by the workers, which import prometheus_client after the fork.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def child_exit(server: object, worker: Any) -> None:
    """A dead worker's counters stay in the sums (what it counted happened); only its live
    gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: object) -> None:
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
