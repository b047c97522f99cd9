"""Counters of the callback hot path: answers by outcome, and how long Redis took each callback.

Everything costly is done once, when the app is built: the labelled children are resolved to
bound methods, so counting an answer is one dict lookup and one increment (in multiprocess mode,
a write into this process's memory-mapped file; no system call). `make bench` measures the
ingress with it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values

from ingest.callback_outcome import Reason

# `_created` series: multiprocess mode has none, so a single process leaves them out too.
disable_created_metrics()

# The ingress's own registry; in multiprocess mode the exposition reads every process's files
# instead (ingest/metrics/exposition.py).
REGISTRY = CollectorRegistry(auto_describe=True)

# From well under a millisecond (Redis on the same host) up to INGEST_REDIS_TIMEOUT (0.5 s).
ENQUEUE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class _Families(NamedTuple):
    received: Counter
    enqueue_seconds: Histogram


@functools.cache
def families() -> _Families:
    """Created on first use, in the process that counts: never at import.

    prometheus_client picks how values are kept (in memory, or in files for multiprocess mode)
    when it is first imported, from PROMETHEUS_MULTIPROC_DIR. gunicorn's master imports this
    package (its config is `ingest.gunicorn_conf`) before its on_starting hook sets that
    variable, so the choice is made again here, in the worker, before any metric exists."""
    values.ValueClass = values.get_value_class()
    return _Families(
        Counter(
            "statuspipe_callbacks_received",
            "Status callback requests answered, by outcome: accepted, or the reason they were"
            " refused.",
            ["outcome"],
            registry=REGISTRY,
        ),
        Histogram(
            "statuspipe_enqueue_duration_seconds",
            "Time Redis took to accept one callback (the append with its backlog check),"
            " failures included.",
            buckets=ENQUEUE_BUCKETS,
            registry=REGISTRY,
        ),
    )


def multiprocess() -> bool:
    families()
    return values.ValueClass is not values.MutexValue


class IngressMetrics:
    """What the callback endpoint counts. Every outcome's series exists from the start at 0,
    so a rate() over a reason that never happened yet is 0, not absent."""

    def __init__(self) -> None:
        received, enqueue_seconds = families()
        self._received = received
        self._answered = {reason: received.labels(reason).inc for reason in get_args(Reason)}
        self.enqueued = enqueue_seconds.observe

    def answered(self, reason: str) -> None:
        inc = self._answered.get(reason)
        if inc is None:  # a reason added to Outcome without a Reason entry: still counted
            inc = self._answered[reason] = self._received.labels(reason).inc
        inc()
