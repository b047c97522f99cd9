"""What counting one callback for GET /metrics costs the ingress: the counter and the enqueue
histogram of ingest/metrics/ingress.py, in prometheus_client's multiprocess mode as gunicorn runs
them, timed in CPU per callback. The whole ingress's ratio to bare Flask is measured by
bench/ingress.py with the counting in; this isolates its share, which the machine's noise in a
wrk run (tens of µs per request) would hide."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from bench import env

CALLBACKS = 200_000

_PROGRAM = """
import time
from ingest.metrics.ingress import IngressMetrics, multiprocess
assert multiprocess(), "PROMETHEUS_MULTIPROC_DIR not in effect"
m = IngressMetrics()
n = {n}
start = time.process_time()
for _ in range(n):
    m.enqueued(0.0007)
    m.answered("accepted")
print((time.process_time() - start) / n * 1e6)
"""


def run(callbacks: int = CALLBACKS) -> float:
    """CPU µs per accepted callback. In a child process: the mode is chosen from the
    environment, as in a gunicorn worker."""
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        out = subprocess.run(
            [sys.executable, "-c", _PROGRAM.format(n=callbacks)],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory},
            cwd=env.ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip())


if __name__ == "__main__":
    print(f"{run():.2f} µs CPU per accepted callback")
