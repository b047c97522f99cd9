"""Wait until every worker of a started `web` process has loaded the app: gunicorn binds its port
before the workers have imported anything, and a measurement that starts then shares the CPU
with their imports."""

from __future__ import annotations

import re
import time

from devtools.processes import Proc
from ingest.gunicorn_conf import READY

_BOOTING = re.compile(r"Booting worker with pid: (\d+)")


def wait_workers_ready(web: Proc, timeout: float = 60.0) -> int:
    """Block until every booted worker logged that it is ready; the number of workers."""
    deadline = time.monotonic() + timeout
    while True:
        text = web.output()
        booted = set(_BOOTING.findall(text))
        ready = set(re.findall(re.escape(READY) + r" (\d+)", text))
        if booted and booted <= ready:
            return len(booted)
        if web.proc.poll() is not None:
            raise RuntimeError(f"web exited while starting:\n{text[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ready)} of {len(booted)} web workers ready after {timeout} s")
        time.sleep(0.1)
