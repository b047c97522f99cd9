"""GET /metrics: the Prometheus text format, for any number of gunicorn processes.

The hot-path counters come from every process of this gunicorn (prometheus_client's multiprocess
mode sums their files), the rest is read when scraped (ingest/metrics/pipeline.py). A source that
does not answer leaves its families out and says so in `statuspipe_metrics_source_up`, so a
scrape never fails because Redis or PostgreSQL is away: the up gauge is what to alert on.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

import redis
from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import exc as sa_exc

from ingest.context import IngestContext
from ingest.metrics import ingress, pipeline
from ingest.responses import plain

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)


class _Ingress(Collector):
    """This process's own counters, when not in multiprocess mode (tests, a bare Flask run)."""

    def collect(self) -> Iterator[Metric]:
        yield from ingress.REGISTRY.collect()


class PipelineCollector(Collector):
    """Redis and PostgreSQL read at scrape time, and the workers' counters kept in Redis."""

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "statuspipe_metrics_source_up",
            "1 when the source answered this scrape; 0: its families are missing from it.",
            labels=["source"],
        )
        families: list[Metric] = []
        try:
            families += self._redis()
            up.add_metric(["redis"], 1)
        except redis.RedisError as exc:
            log.warning("metrics: Redis did not answer (%s)", exc)
            up.add_metric(["redis"], 0)
        try:
            families += self._database()
            up.add_metric(["postgresql"], 1)
        except sa_exc.SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer (%s)", exc)
            up.add_metric(["postgresql"], 0)
        yield up
        yield from families

    def _redis(self) -> list[Metric]:
        settings = self.ctx.settings
        state = pipeline.stream_state(self.ctx.redis, settings.stream_key, settings.consumer_group)
        out: list[Metric] = [
            GaugeMetricFamily(
                "statuspipe_stream_backlog",
                "Callbacks accepted and not yet stored (entries in the Redis stream).",
                value=state.backlog,
            ),
            GaugeMetricFamily(
                "statuspipe_stream_pending",
                "Callbacks read by a worker and not yet acknowledged.",
                value=state.pending,
            ),
            GaugeMetricFamily(
                "statuspipe_lag_seconds",
                "Age of the oldest callback not yet stored; 0 when none waits.",
                value=state.lag_seconds,
            ),
        ]
        for family, values in pipeline.worker_totals(self.ctx.redis, settings.stream_key).items():
            counter = CounterMetricFamily(
                f"statuspipe_{family.name}", family.doc, labels=list(family.labels)
            )
            if not family.labels and not values:
                values = {(): 0}  # exists from the start, so increase() works from the first
            for labels, value in sorted(values.items()):
                counter.add_metric(list(labels), value)
            out.append(counter)
        return out

    def _database(self) -> list[Metric]:
        state = pipeline.database_state(self.ctx.sessions)
        sent = CounterMetricFamily(
            "statuspipe_alerts_sent", "Grouped alerts posted to every sink, by kind.",
            labels=["kind"],
        )  # fmt: skip
        for kind, n in sorted(state.alerts_sent.items()):
            sent.add_metric([kind], n)
        return [
            GaugeMetricFamily(
                "statuspipe_dead_letter_rows",
                "Rows in dead_letters: stream entries that could not be stored"
                " (`statuspipe dead-letters` lists them).",
                value=state.dead_letters,
            ),
            sent,
            GaugeMetricFamily(
                "statuspipe_alerts_open",
                "Alert groups not posted yet: their window is open, or a sink is being retried.",
                value=state.alerts_open,
            ),
        ]


def _authorized(expected: str) -> bool:
    if not expected:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )


@bp.get("/metrics")
def metrics() -> Response:
    ctx: IngestContext = current_app.extensions["statuspipe"]
    if not _authorized(ctx.settings.metrics_token):
        return plain(401, "bearer token required (METRICS_TOKEN)", {"WWW-Authenticate": "Bearer"})
    registry = CollectorRegistry(auto_describe=False)
    if ingress.multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Ingress())
    registry.register(PipelineCollector(ctx))
    return Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE_LATEST)
