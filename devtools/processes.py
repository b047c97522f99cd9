"""A child process of a test, a benchmark or the dev runner, with its output kept."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from devtools.procfile import ROOT


class OutputNotSeenError(AssertionError):
    """The process never printed what was waited for (an AssertionError: pytest shows it)."""


class Proc:
    """A child process whose output goes to a file in `log_dir` (shown when a test fails), or,
    with no `log_dir`, to this process's own stdout (the dev runner's terminal)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        log_dir: Path | None,
        *,
        log_name: str | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log_path: Path | None = None
        self.log = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / (log_name or f"{name}-{time.monotonic_ns()}.log")
            self.log = self.log_path.open("wb")
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            env=full_env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if self.log_path is None:
            return ""
        if self.log is not None and not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise OutputNotSeenError(f"{self.name} never printed {needle!r}:\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Signal, wait up to `timeout`, then kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
