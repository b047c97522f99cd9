"""The services and processes a benchmark run uses: its own database, Redis db and processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from devtools.app_env import app_env
from devtools.database import create_database
from devtools.processes import Proc
from devtools.procfile import BIN, ROOT

__all__ = ["BIN", "ROOT"]

OUT = ROOT / "bench" / "out"
AUTH_TOKEN = "bench_auth_token_0123456789abcdef"
PUBLIC_URL = "https://hooks.example.com"
PG_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# Its own database per concurrent bench run (e.g. two checkouts on one server).
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "statuspipe_bench")


def fresh_database() -> str:
    """Drop and re-create the bench database, migrated; returns its URL."""
    return create_database(PG_ADMIN_URL, DB_NAME)


def fresh_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    return client


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """A benchmarked process's settings: no backlog limit, quiet logs unless `extra` says."""
    return app_env(
        database_url,
        REDIS_URL,
        auth_token=AUTH_TOKEN,
        api_token="bench",
        public_url=PUBLIC_URL,
        **{"INGEST_MAX_BACKLOG": "10000000", "LOG_LEVEL": "WARNING", **extra},
    )


def start(name: str, argv: list[str], env: dict[str, str]) -> Proc:
    """A child process with its output in bench/out/<name>.log."""
    return Proc(name, argv, env, OUT, log_name=f"{name}.log")


@contextmanager
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
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


def _cpu_line() -> list[int]:
    """The machine's CPU ticks so far (/proc/stat): user nice system idle iowait irq softirq
    steal; guest time is already counted in user."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_ticks() -> tuple[int, int]:
    """(all, stolen) CPU ticks of the machine so far: steal is time the hypervisor gave this
    virtual machine's CPUs to someone else, which no process here can see in its own CPU."""
    values = _cpu_line()
    return sum(values), values[7]


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent on anything but idling, all cores."""
    user, nice, system, _idle, _iowait, irq, softirq, _steal = _cpu_line()
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


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


def service_cpu_groups(procs: list[Proc]) -> CpuGroups:
    """The CPU a drain costs: the worker processes, PostgreSQL's and Redis's."""
    return {
        "workers": lambda: [pid for p in procs for pid in tree_pids(p.proc.pid)],
        "PostgreSQL": lambda: pids_named("postgres"),
        "Redis": lambda: pids_named("redis-server"),
    }
