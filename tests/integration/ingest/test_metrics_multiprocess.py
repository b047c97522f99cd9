"""GET /metrics from a real gunicorn with two worker processes and a real celery worker: the
callback counters add up across the processes that answered, and the workers' counters (kept
in Redis) reach the same /metrics."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_env, start_web, start_worker
from tests.twilio_fixtures import callback_fields, new_sid, signed_post

PUBLIC = "https://hooks.example.com"
N = 20


def post(base, fields, signature_ok=True):
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    if not signature_ok:
        headers["X-Twilio-Signature"] = "not-it"
    req = urllib.request.Request(base + "/twilio/status", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def scrape(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def accepted(samples):
    return samples[("statuspipe_callbacks_received_total", (("outcome", "accepted"),))]


def children(pid):
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def per_process_accepted(worker_pid, tmp_path):
    """The accepted count in one gunicorn worker's own file, read through prometheus_client."""
    # The directory the gunicorn master made (ingest/gunicorn_conf.py); pids are unique.
    (counters,) = Path(tempfile.gettempdir()).glob(f"statuspipe-metrics-*/counter_{worker_pid}.db")
    alone = tmp_path / f"only-{worker_pid}"
    alone.mkdir(parents=True)
    shutil.copy(counters, alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    for family in registry.collect():
        for s in family.samples:
            if s.name == "statuspipe_callbacks_received_total" and s.labels == {
                "outcome": "accepted"
            }:
                return s.value
    return 0.0


def test_counters_add_up_across_two_gunicorn_workers(
    spawn, pg_url, redis_base_url, redis_client, db, tmp_path
):
    env = make_env(pg_url, redis_base_url)
    web, base = start_web(spawn, env)  # WEB_CONCURRENCY=2
    before = accepted(scrape(base))
    assert before == 0  # a fresh gunicorn starts from nothing (ingest/gunicorn_conf.py)

    # Each worker answers half of the callbacks, deterministically: while one is stopped only
    # the other can accept connections.
    fields = [callback_fields(new_sid(), "sent") for _ in range(N)]
    workers = children(web.pid)
    assert len(workers) == 2
    for answering, stopped in (workers, workers[::-1]):
        os.kill(stopped, signal.SIGSTOP)
        try:
            for f in fields[: N // 2] if answering == workers[0] else fields[N // 2 :]:
                assert post(base, f) == 200
        finally:
            os.kill(stopped, signal.SIGCONT)
    assert post(base, callback_fields(new_sid(), "sent"), signature_ok=False) == 403

    samples = scrape(base)
    assert accepted(samples) - before == N
    bad = ("statuspipe_callbacks_received_total", (("outcome", "bad_signature"),))
    assert samples[bad] == 1
    assert samples[("statuspipe_enqueue_duration_seconds_count", ())] == N
    assert samples[("statuspipe_stream_backlog", ())] == N  # no worker drains yet

    assert [per_process_accepted(pid, tmp_path) for pid in workers] == [N // 2, N - N // 2]

    # The drain's counters come through Redis to the same endpoint.
    start_worker(spawn, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        samples = scrape(base)
        if samples[("statuspipe_callbacks_stored_total", ())] == N:
            break
        time.sleep(0.2)
    assert samples[("statuspipe_callbacks_stored_total", ())] == N
    assert samples[("statuspipe_callbacks_duplicate_total", ())] == 0
    assert samples[("statuspipe_stream_backlog", ())] == 0
    assert samples[("statuspipe_lag_seconds", ())] == 0
    assert samples[("statuspipe_dead_letter_rows", ())] == 0
    assert samples[("statuspipe_metrics_source_up", (("source", "postgresql"),))] == 1

    # A duplicate of a stored (message, status) is stored once more as a duplicate.
    assert post(base, fields[1]) == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        samples = scrape(base)
        if samples[("statuspipe_callbacks_stored_total", ())] == N + 1:
            break
        time.sleep(0.2)
    assert samples[("statuspipe_callbacks_duplicate_total", ())] == 1
