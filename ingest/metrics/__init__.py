"""Prometheus metrics of the whole pipeline, served by the web process at `GET /metrics`.

1. `ingress.py`     counters of the callback hot path (per gunicorn process, summed through
                    prometheus_client's multiprocess mode; ingest/gunicorn_conf.py sets it up)
2. `pipeline.py`    what Redis and PostgreSQL say at scrape time: backlog, pending, lag, dead
                    letters, alerts; the workers' counters (shared/worker_counters.py)
3. `exposition.py`  the route: both of the above in the Prometheus text format
"""

from __future__ import annotations

from ingest.metrics.exposition import bp

__all__ = ["bp"]
