"""Drain: 100k callbacks preloaded in Redis, persisted by 2 statuspipe worker processes, and by
the naive one-task-per-callback reference (bench/naive_reference.py) on the same data.

The statuspipe workers are started first and the backlog appears all at once (one MULTI/EXEC)
when both are waiting on the stream: the clock then measures draining only. Started on a full
stream, the first worker drained alone, and competed with the second one's imports, for the
quarter second the second one took to boot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import env
from bench.data import Callback, callbacks, expected_counts
from devtools.processes import Proc
from devtools.procfile import command as procfile_command
from shared import stream
from shared.config import load_settings


@dataclass
class DrainResult:
    name: str
    callbacks: int
    seconds: float
    messages_ok: bool
    events_ok: bool
    counted_ok: bool
    peak_rss_mib: float
    # CPU seconds spent by the workers, PostgreSQL and Redis while draining: what a callback
    # costs and where, and how close the rate came to what the cores allow.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    steal: float = 0.0  # share of the machine's CPU time the hypervisor took meanwhile
    database_url: str = ""  # left as the run ended, for checks beyond the counts

    @property
    def rate(self) -> float:
        return self.callbacks / self.seconds

    def cpu_us_per_callback(self) -> dict[str, float]:
        return {name: s / self.callbacks * 1e6 for name, s in self.cpu_seconds.items()}

    def busy(self, cores: int) -> float:
        """Share of the machine the drain's processes used while it ran."""
        return sum(self.cpu_seconds.values()) / (self.seconds * cores)


def preload_stream(client: redis.Redis, cbs: list[Callback], at_once: bool = False) -> None:
    """Append the callbacks as the ingress would. `at_once`: in one MULTI/EXEC, so consumers
    see the whole backlog appear in one step."""
    settings = load_settings({})
    stream.ensure_group(client, settings.stream_key, settings.consumer_group)
    now = repr(time.time())
    pipe = client.pipeline(transaction=at_once)
    for i, cb in enumerate(cbs, 1):
        pipe.xadd(
            settings.stream_key,
            {stream.F_BODY: cb.body, stream.F_RECEIVED: now, stream.F_TOKEN: cb.token},
        )
        if not at_once and i % 5000 == 0:
            pipe.execute()
    pipe.execute()


def check_database(database_url: str, cbs: list[Callback]) -> tuple[bool, bool, bool]:
    """Exactly the expected messages and audit rows, and every callback counted once."""
    messages, pairs = expected_counts(cbs)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        got_messages = conn.scalar(text("SELECT count(*) FROM messages"))
        got_pairs = conn.scalar(text("SELECT count(*) FROM message_events"))
        counted = conn.scalar(
            text("SELECT coalesce(sum(1 + duplicate_count), 0) FROM message_events")
        )
    engine.dispose()
    return got_messages == messages, got_pairs == pairs, counted == len(cbs)


def _wait_drained(
    client: redis.Redis,
    key: str,
    group: str,
    procs: list[Proc],
    total: int,
    loader: threading.Thread,
) -> tuple[float, int]:
    """Seconds from the backlog's appearance to the last entry acknowledged, and peak RSS (KiB).
    The backlog appears in one step (preload_stream at_once), so an empty stream with nothing
    pending means "not loaded yet" until the first time the stream is seen non-empty."""
    started = None
    peak = 0
    last_report = time.monotonic()
    while True:
        length = client.xlen(key)
        pending = client.xpending(key, group)["pending"]
        now = time.monotonic()
        if started is None and (pending or length):
            started = now
        if started is None and not loader.is_alive():
            raise RuntimeError("the backlog never appeared in Redis; see the loader's traceback")
        if started is not None and length == 0 and pending == 0:
            return now - started, peak
        peak = max(peak, sum(env.rss_kib(pid) for p in procs for pid in env.tree_pids(p.proc.pid)))
        for p in procs:
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited; see {p.log_path}")
        if started is not None and now - last_report > 5:
            print(f"    drain: {total - length:,}/{total:,} taken", flush=True)
            last_report = now
        time.sleep(0.02)


def run_statuspipe(cbs: list[Callback], workers: int = 2, **settings_env: str) -> DrainResult:
    """`settings_env`: settings the workers get on top of the bench's (ACT_ON_FAILURES=...)."""
    database_url = env.fresh_database()
    client = env.fresh_redis()
    settings = load_settings({})
    stream.ensure_group(client, settings.stream_key, settings.consumer_group)
    run_env = env.base_env(database_url, LOG_LEVEL="INFO", **settings_env)
    with env.processes() as procs:
        for i in range(workers):
            procs.append(env.start(f"drain-worker-{i}", procfile_command("worker"), run_env))
        for p in procs:
            p.wait_for_output("workers.drain: draining ", timeout=60)
        cpu_groups = env.service_cpu_groups(procs)
        cpu_before = env.cpu_snapshot(cpu_groups)
        ticks_before = env.machine_ticks()
        loader = threading.Thread(target=preload_stream, args=(client, cbs, True))
        loader.start()  # the watcher below polls on its own connection meanwhile
        seconds, peak = _wait_drained(
            redis.Redis.from_url(env.REDIS_URL), settings.stream_key, settings.consumer_group,
            procs, len(cbs), loader,
        )  # fmt: skip
        cpu = env.cpu_used(cpu_before, env.cpu_snapshot(cpu_groups))
        steal = _steal_since(ticks_before)
        loader.join()
    ok = check_database(database_url, cbs)
    return DrainResult(
        f"statuspipe, {workers} worker processes",
        len(cbs),
        seconds,
        *ok,
        peak / 1024,
        cpu,
        steal,
        database_url,
    )


def _steal_since(before: tuple[int, int]) -> float:
    total, stolen = env.machine_ticks()
    return (stolen - before[1]) / max(1, total - before[0])


def commit_rate(database_url: str, clients: int = 2, seconds: int = 5) -> float | None:
    """Transactions/s of a one-row INSERT and COMMIT by `pgbench` on this machine, now: the
    ceiling of any design that commits once per callback. None when pgbench is missing."""
    if shutil.which("pgbench") is None:
        return None
    url = make_url(database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_commit_probe (v integer)"))
    engine.dispose()
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write("INSERT INTO bench_commit_probe (v) VALUES (1);\n")
        script.flush()
        out = subprocess.run(
            ["pgbench", "-n", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
             "-f", script.name, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", url.database or "postgres"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+)", out.stdout)
    return float(found.group(1)) if found else None


def run_naive(cbs: list[Callback], concurrency: int = 2) -> DrainResult:
    from bench import naive_reference

    database_url = env.fresh_database()
    client = env.fresh_redis()
    run_env = env.base_env(database_url)
    app = naive_reference.make_app(env.REDIS_URL)
    now = time.time()
    print(f"    naive: queueing {len(cbs):,} tasks", flush=True)
    with app.producer_or_acquire() as producer:
        for cb in cbs:
            app.send_task("naive.store_one", (cb.fields, cb.token, now), producer=producer)
    queue = naive_reference.QUEUE
    argv = [str(env.BIN / "celery"), "-A", "bench.naive_reference", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "-Q", queue]  # fmt: skip
    total = len(cbs)
    engine = create_engine(database_url)
    with env.processes() as procs:
        procs.append(env.start("naive-worker", argv, run_env))
        cpu_groups = env.service_cpu_groups(procs)
        cpu_before: dict[str, dict[int, float]] = {}  # both taken when the clock starts
        ticks_before = (0, 0)
        started = None
        peak = 0
        last_report = time.monotonic()
        while True:
            with engine.connect() as conn:
                done = conn.scalar(
                    text("SELECT coalesce(sum(1 + duplicate_count), 0) FROM message_events")
                )
            now_m = time.monotonic()
            if started is None and (done or client.llen(queue) < total):
                started = now_m  # the worker has booted: its start-up is not the design's cost
                cpu_before = env.cpu_snapshot(cpu_groups)
                ticks_before = env.machine_ticks()
            if done >= total:
                break
            peak = max(peak, sum(env.rss_kib(pid) for pid in env.tree_pids(procs[0].proc.pid)))
            if procs[0].proc.poll() is not None:
                raise RuntimeError(f"naive worker exited; see {procs[0].log_path}")
            if started is not None and done and now_m - last_report > 5:
                rate = done / (now_m - started)
                print(f"    naive: {done:,}/{total:,} stored, {rate:,.0f}/s, about"
                      f" {(total - done) / rate:.0f} s left", flush=True)  # fmt: skip
                last_report = now_m
            time.sleep(0.05)
        seconds = time.monotonic() - started
        cpu = env.cpu_used(cpu_before, env.cpu_snapshot(cpu_groups))
        steal = _steal_since(ticks_before)
    engine.dispose()
    ok = check_database(database_url, cbs)
    return DrainResult(
        f"naive: one Celery task per callback ({concurrency} processes)",
        total,
        seconds,
        *ok,
        peak / 1024,
        cpu,
        steal,
    )


if __name__ == "__main__":
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = callbacks(n)
    result = run_statuspipe(data)
    print(
        json.dumps({**result.__dict__, "rate": result.rate, "cpu_us": result.cpu_us_per_callback()})
    )
