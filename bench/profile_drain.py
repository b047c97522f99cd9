"""Where one worker's drain time goes: `python -m bench.profile_drain [callbacks]`.

Runs one Drainer in this process (as a worker's drain thread runs it, with the collector frozen
as workers/celery_app.py does) over preloaded callbacks, and prints per callback:
- this process's CPU, split by phase (parse, collapse, COPY lines, Redis, the rest of storing);
- the PostgreSQL backend's CPU (read from /proc, so run it on the database's machine);
- the wall time of each SQL statement and COPY, server time included.
For a sampling profile of the same run: `py-spy record -o drain.svg -- python -m bench.profile_drain`.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bench import env
from bench.data import callbacks
from bench.drain import preload_stream
from devtools.drain import drain_until_empty
from shared.config import load_settings
from shared.db import make_engine, make_sessionmaker
from workers import drain
from workers.changes import ChangePublisher
from workers.drain import loop
from workers.store import batch, postgres

cpu: collections.Counter[str] = collections.Counter()
wall: collections.Counter[str] = collections.Counter()


def _cpu_timed(owner: Any, name: str) -> None:
    fn: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu[name] += time.thread_time() - started

    setattr(owner, name, timed)


def _statement_timer(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, *_: Any) -> None:
        conn.info["statement_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        label = " ".join(statement.split())[:50]
        wall[label] += time.perf_counter() - conn.info["statement_started"]

    copy = postgres._copy

    def timed_copy(session: Any, table: str, lines: Any) -> None:
        # Formatting the lines is counted as CPU ("COPY lines"), not as COPY. Timed per batch:
        # a per-row timer would cost more than the row (thread_time() is a system call).
        cpu_started = time.thread_time()
        lines = list(lines)
        cpu["COPY lines"] += time.thread_time() - cpu_started
        started = time.perf_counter()
        try:
            copy(session, table, lines)
        finally:
            wall[f"COPY {table}"] += time.perf_counter() - started

    postgres._copy = timed_copy


def _backend_cpu_seconds(engine: Engine) -> float:
    with engine.connect() as conn:
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(total: int) -> None:
    data = callbacks(total)
    database_url = env.fresh_database()
    preload_stream(env.fresh_redis(), data)
    settings = load_settings(
        {"DATABASE_URL": database_url, "REDIS_URL": env.REDIS_URL, "BLOCK_MS": "20"}
    )
    engine = make_engine(settings, pool_size=1, max_overflow=0)  # one backend to measure
    _statement_timer(engine)
    for owner, name in [(loop, "parse_entries"), (batch, "collapse"),
                        (drain.Drainer, "_read"),
                        (drain.Drainer, "_ack"), (drain.Drainer, "_store"),
                        (drain.Drainer, "_ack_and_publish")]:  # fmt: skip
        _cpu_timed(owner, name)
    client = drain.redis_client(settings)
    # As a worker runs it: each batch's status changes go to the change feed after its commit.
    publisher = ChangePublisher(settings, client)
    drainer = drain.Drainer(
        settings, client, make_sessionmaker(engine), name="profile",
        publish_changes=publisher.queue,
    )  # fmt: skip
    del data
    gc.freeze()
    backend_before = _backend_cpu_seconds(engine)
    started, cpu_started = time.perf_counter(), time.thread_time()
    drain_until_empty(drainer)
    seconds, process_cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    backend = _backend_cpu_seconds(engine) - backend_before

    def per(value: float) -> str:
        return f"{value / total * 1e6:6.1f} µs"

    print(f"{total:,} callbacks in {seconds:.1f} s: {total / seconds:,.0f}/s, one drainer")
    print(f"{per(process_cpu)}  drainer CPU (Python), per callback")
    print(f"{per(backend)}  PostgreSQL backend CPU, per callback")
    print("drainer CPU by phase (_store includes collapse and COPY lines):")
    for name, value in cpu.most_common():
        print(f"  {per(value)}  {name}")
    print("statement wall time (server work and round trip):")
    for label, value in wall.most_common(8):
        print(f"  {per(value)}  {label}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
