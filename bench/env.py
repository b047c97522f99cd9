"""The services and processes a benchmark run uses: its own database, Redis db and processes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
AUTH_TOKEN = "bench_auth_token_0123456789abcdef"
PUBLIC_URL = "https://hooks.example.com"
PG_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DB_NAME = "statuspipe_bench"


def fresh_database() -> str:
    """Drop and re-create the bench database, migrated; returns its URL."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    url = make_url(PG_ADMIN_URL).set(database=DB_NAME).render_as_string(hide_password=False)
    upgrade(url)
    return url


def fresh_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    return client


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PUBLIC_URL=PUBLIC_URL,
        API_TOKEN="bench",
        INGEST_MAX_BACKLOG="10000000",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def procfile(process: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            argv = shlex.split(command)
            return [str(BIN / argv[0]), *argv[1:]]
    raise KeyError(process)


class Process:
    """A child process with its output in bench/out/<name>.log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = OUT / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} never printed {needle!r}; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for p in reversed(started):
            p.stop()


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (gunicorn master + workers, celery + pool)."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += tree_pids(int(child))
    return out


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, all its threads; 0 once it is gone."""
    try:
        # The name in parentheses may hold spaces: count the fields after it.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids_named(comm: str) -> list[int]:
    """Every process whose command name is `comm` (e.g. all of PostgreSQL's processes)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def machine_ticks() -> tuple[int, int]:
    """(all, stolen) CPU ticks of the machine so far: steal is time the hypervisor gave this
    virtual machine's CPUs to someone else, which no process here can see in its own CPU."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal; guest time is already counted in user.
    return sum(values[:8]), values[7]


CpuGroups = dict[str, Callable[[], list[int]]]


def cpu_snapshot(groups: CpuGroups) -> dict[str, dict[int, float]]:
    return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in groups.items()}


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds each group spent between two snapshots. A process that started in between
    counts from zero; one that ended in between is not counted (none does in a drain run)."""
    return {
        name: sum(cpu - before[name].get(pid, 0.0) for pid, cpu in pids.items())
        for name, pids in after.items()
    }


def service_cpu_groups(procs: list[Process]) -> CpuGroups:
    """The CPU a drain costs: the worker processes, PostgreSQL's and Redis's."""
    return {
        "workers": lambda: [pid for p in procs for pid in tree_pids(p.proc.pid)],
        "PostgreSQL": lambda: pids_named("postgres"),
        "Redis": lambda: pids_named("redis-server"),
    }


def wait_port(port: int, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")
