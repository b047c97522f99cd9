"""End to end: signed callbacks offered at a constant rate to gunicorn + 2 worker processes;
time from the ingress's acknowledgement to the row being visible, committed, in PostgreSQL;
and the count check: every acknowledged callback in the audit trail exactly once.

The latency is an upper bound: rows are found by polling every POLL_SECONDS.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2
from sqlalchemy.engine import make_url

from bench import env
from bench.data import FINALS, Callback, _fields, signature

POLL_SECONDS = 0.02
REFUSALS: dict[int, int] = {}
ERRORS: list[str] = []
REFUSAL_TIMES: list[int] = []
HOLE_SECONDS = 5.0


@dataclass
class E2EResult:
    rate: int
    seconds: int
    offered: int
    acknowledged: int
    refused: int  # non-2xx or connection errors: not acknowledged, Twilio would retry
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    double_counted: int
    web_peak_rss_mib: float
    worker_peak_rss_mib: float
    worker_rss_samples: list[tuple[float, float]] = field(default_factory=list)


def _stream_of_callbacks(seed: int = 23):
    """sent then a final status for each new message, forever; every (sid, status) unique."""
    rng = random.Random(seed)
    while True:
        sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
        to = f"+1555{rng.randrange(10**7):07d}"
        final, code = rng.choice(FINALS)
        for status, err in (("sent", None), (final, code)):
            yield Callback(sid, status, _fields(rng, sid, to, status, err), str(uuid.uuid4()))


def _request_bytes(cb: Callback, port: int) -> bytes:
    body = cb.body
    sig = signature(f"{env.PUBLIC_URL}/twilio/status", cb, env.AUTH_TOKEN)
    head = (
        f"POST /twilio/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        f"X-Twilio-Signature: {sig}\r\nI-Twilio-Idempotency-Token: {cb.token}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class _OneCallback(asyncio.Protocol):
    """One request on one connection (as Twilio sends them): write, read the status line, close."""

    def __init__(self, key: tuple[str, str], payload: bytes, done: Callable[..., None]) -> None:
        self.key, self.payload, self.done = key, payload, done
        self.buffer = b""
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.payload)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.finished and b"\r\n" in self.buffer:
            self.finished = True
            try:
                status = int(self.buffer.split(b" ", 2)[1])
            except (IndexError, ValueError):
                status = 0
            self.done(self.key, status)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished and len(ERRORS) < 5:
            ERRORS.append(f"lost: {exc!r} after {self.buffer[:80]!r}")
        if not self.finished:
            self.finished = True
            self.done(self.key, -1)


async def _offer(port: int, rate: int, seconds: int, acked: dict, refused: list) -> int:
    """Offer `rate` callbacks a second, on schedule, whatever the answers do. Requests are
    signed before the clock starts so the generator costs as little CPU as possible."""
    source = _stream_of_callbacks()
    total = rate * seconds
    print(f"    e2e: signing {total:,} callbacks", flush=True)
    payloads = [
        (cb.sid, cb.status, _request_bytes(cb, port)) for cb in (next(source) for _ in range(total))
    ]
    loop = asyncio.get_running_loop()
    outstanding = {"n": 0}
    finished = loop.create_future()

    def done(key: tuple[str, str], status: int) -> None:
        if 200 <= status < 300:
            acked[key] = time.time()
        else:
            refused.append(status)
            REFUSALS[status] = REFUSALS.get(status, 0) + 1
            REFUSAL_TIMES.append(round(loop.time() - start))
        outstanding["n"] -= 1
        if outstanding["n"] == 0 and sent["n"] == total and not finished.done():
            finished.set_result(None)

    sent = {"n": 0}

    def connect(i: int) -> None:
        sid, status, payload = payloads[i]
        outstanding["n"] += 1
        sent["n"] += 1
        coro = loop.create_connection(
            lambda: _OneCallback((sid, status), payload, done), "127.0.0.1", port
        )
        task = loop.create_task(coro)

        def failed(t: asyncio.Task) -> None:
            if t.exception() is not None:
                if len(ERRORS) < 5:
                    ERRORS.append(repr(t.exception()))
                done((sid, status), -2)

        task.add_done_callback(failed)

    start = loop.time() + 0.1
    for i in range(total):
        loop.call_at(start + i / rate, connect, i)
    for tick in range(10, seconds, 10):
        await asyncio.sleep(max(0.0, start + tick - loop.time()))
        print(
            f"    e2e: {tick * rate:,}/{total:,} offered, {len(acked):,} acknowledged", flush=True
        )
    await asyncio.wait_for(finished, timeout=seconds + 120)
    return total


class RowWatcher(threading.Thread):
    """Records when each (sid, status) row first becomes visible to another connection."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        url = make_url(database_url)
        self.conn = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
            password=url.password,
        )  # fmt: skip
        self.conn.autocommit = True
        self.seen: dict[tuple[str, str], float] = {}
        self.dupes: dict[tuple[str, str], int] = {}
        self.rows = 0
        self.stop = threading.Event()

    def run(self) -> None:
        # Ids come from a sequence at insert time, so a lower id can commit after a higher one,
        # and upserts that hit a conflict burn ids for good. Ids skipped over are re-checked
        # until they appear or HOLE_SECONDS pass.
        last_id = 0
        holes: dict[int, float] = {}
        cur = self.conn.cursor()
        while not self.stop.is_set():
            cur.execute(
                "SELECT id, message_sid, status, duplicate_count FROM message_events "
                "WHERE id > %s OR id = ANY(%s)",
                (last_id, list(holes)),
            )
            now = time.time()
            for row_id, sid, status, dup in sorted(cur.fetchall()):
                self.seen.setdefault((sid, status), now)
                self.dupes[(sid, status)] = dup
                holes.pop(row_id, None)
                if row_id > last_id:
                    holes.update(dict.fromkeys(range(last_id + 1, row_id), now))
                    last_id = row_id
            holes = {i: t for i, t in holes.items() if now - t < HOLE_SECONDS}
            self.stop.wait(POLL_SECONDS)

    def count_rows(self) -> tuple[int, int]:
        cur = self.conn.cursor()
        cur.execute("SELECT count(*), coalesce(sum(duplicate_count), 0) FROM message_events")
        rows, dups = cur.fetchone()
        return int(rows), int(dups)


def _rss_mib(pid: int) -> float:
    return sum(env.rss_kib(p) for p in env.tree_pids(pid)) / 1024


def run(rate: int = 1000, seconds: int = 60, workers: int = 2) -> E2EResult:
    database_url = env.fresh_database()
    env.fresh_redis()
    port = 19000 + int(time.time()) % 1000
    web_env = env.base_env(database_url, PORT=str(port), WEB_CONCURRENCY="2")
    worker_env = env.base_env(database_url, LOG_LEVEL="INFO")
    acked: dict[tuple[str, str], float] = {}
    refused: list[int] = []
    samples: list[tuple[float, float]] = []
    web_peak = worker_peak = 0.0
    with env.processes() as procs:
        web = env.Process("e2e-web", env.procfile("web"), web_env)
        procs.append(web)
        worker_procs = [env.Process(f"e2e-worker-{i}", env.procfile("worker"), worker_env)
                        for i in range(workers)]  # fmt: skip
        procs.extend(worker_procs)
        env.wait_port(port)
        for w in worker_procs:
            w.wait_for("draining")
        watcher = RowWatcher(database_url)
        watcher.start()

        sampling = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            nonlocal web_peak, worker_peak
            while not sampling.wait(1.0):
                web_peak = max(web_peak, _rss_mib(web.proc.pid))
                per_worker = [_rss_mib(w.proc.pid) for w in worker_procs]
                worker_peak = max(worker_peak, *per_worker)
                samples.append((time.monotonic() - t0, max(per_worker)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        offered = asyncio.run(_offer(port, rate, seconds, acked, refused))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(k in watcher.seen for k in acked):
            time.sleep(0.2)
        time.sleep(1.0)  # anything counted twice would show up by now
        sampling.set()
        watcher.stop.set()
        watcher.join()
        rows, dup_sum = watcher.count_rows()

    latencies = sorted((watcher.seen[k] - t) * 1000 for k, t in acked.items() if k in watcher.seen)
    lost = sum(1 for k in acked if k not in watcher.seen)
    # Every (sid, status) was sent once, so any duplicate count is a double count. (Rows beyond
    # the acknowledged set are callbacks the ingress took whose answer the client missed.)
    double = dup_sum
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return E2EResult(
        rate=rate, seconds=seconds, offered=offered, acknowledged=len(acked),
        refused=len(refused), p50_ms=q[49], p99_ms=q[98],
        max_ms=latencies[-1] if latencies else 0.0, lost=lost, double_counted=double,
        web_peak_rss_mib=web_peak, worker_peak_rss_mib=worker_peak, worker_rss_samples=samples,
    )  # fmt: skip


if __name__ == "__main__":
    import sys

    r = run(seconds=int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    r.worker_rss_samples = r.worker_rss_samples[-3:]
    import collections

    print(REFUSALS, ERRORS[:1], sorted(collections.Counter(REFUSAL_TIMES).items()))
    print(r)
