"""End to end: signed callbacks offered at a constant rate to gunicorn + 2 worker processes;
time from the ingress's acknowledgement to the row being visible, committed, in PostgreSQL;
and the count check: every acknowledged callback in the audit trail exactly once.

Latency runs from the ingress's clock when it appended the callback (stored as received_at; the
200 goes out right after) to the moment another connection first sees the row. It is an upper
bound: rows are found by polling every POLL_SECONDS.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import psycopg2
from sqlalchemy.engine import make_url

from bench import env
from bench.data import FINALS, Callback, _fields, signature
from devtools.ports import wait_port
from devtools.procfile import command as procfile_command
from devtools.web_ready import wait_workers_ready

POLL_SECONDS = 0.02
CONNECTIONS = 32
WINDOW = 250  # keys looked for past the furthest seen: a quarter second at 1,000/s


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
    refusals: dict[str, int] = field(default_factory=dict)
    workers_killed: int = 0
    taken_over: int = 0  # callbacks a surviving or replacement worker took over from a dead one
    # ... of which the dead worker had already committed: found in the receipts and skipped
    redelivered: int = 0


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


def _write_requests(total: int) -> tuple[str, list[tuple[str, str]]]:
    """`total` distinct signed callbacks, one per line, for wrk_paced.lua; and their
    (sid, status) keys in the same order."""
    path = env.OUT / "e2e-requests.tsv"
    env.OUT.mkdir(parents=True, exist_ok=True)
    source = _stream_of_callbacks()
    url = f"{env.PUBLIC_URL}/twilio/status"
    keys = []
    with path.open("w") as out:
        for _ in range(total):
            cb = next(source)
            keys.append((cb.sid, cb.status))
            out.write(f"{signature(url, cb, env.AUTH_TOKEN)}\t{cb.token}\t{cb.body.decode()}\n")
    return str(path), keys


def _offer(port: int, rate: int, seconds: int, requests_file: str) -> dict:
    """wrk (C, so the load generator is never the slow client a sync worker waits on) offering
    every callback once at `rate`/s, each on a new connection as Twilio sends them."""
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds + 5}s", "--timeout", "10s",
           "-s", str(env.ROOT / "bench" / "wrk_paced.lua"), f"http://127.0.0.1:{port}",
           "--", requests_file, str(rate)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


class RowWatcher(threading.Thread):
    """Records when each offered (sid, status) row first becomes visible to another connection.

    The audit trail has no insertion-ordered column to follow (its key is the pair), so the
    watcher asks for the pairs it expects, by primary key. wrk offers them in file order, and
    rows appear in nearly that order, so it looks WINDOW keys past the furthest one seen
    (a window set by the clock instead ran seconds ahead: wrk formats every request before
    it sends the first)."""

    def __init__(self, database_url: str, keys: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        url = make_url(database_url)
        self.conn = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
            password=url.password,
        )  # fmt: skip
        self.conn.autocommit = True
        # The audit table is new and growing: before autovacuum's first ANALYZE the planner
        # takes it for tiny and scans it whole on every poll, which slowed the polls (and
        # loaded PostgreSQL) more with every minute of a soak.
        with self.conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
        self.keys = keys
        self.seen: dict[tuple[str, str], float] = {}
        self.latency_ms: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        order = {key: i for i, key in enumerate(self.keys)}
        waiting: set[tuple[str, str]] = set()
        added = furthest = 0
        cur = self.conn.cursor()
        while not self.stop.is_set():
            due = min(furthest + WINDOW, len(self.keys))
            waiting.update(self.keys[added:due])
            added = max(added, due)
            if waiting:
                sids, statuses = zip(*waiting, strict=True)
                cur.execute(
                    "SELECT e.message_sid, e.status, extract(epoch FROM e.received_at)::float8"
                    " FROM unnest(%s::text[], %s::text[]) AS k(sid, status)"
                    " JOIN message_events e ON e.message_sid = k.sid AND e.status = k.status",
                    (list(sids), list(statuses)),
                )
                now = time.time()
                for sid, status, received in cur.fetchall():
                    key = (sid, status)
                    if key in waiting:
                        waiting.discard(key)
                        self.seen[key] = now
                        self.latency_ms.append((now - received) * 1000)
                        furthest = max(furthest, order[key] + 1)
            self.stop.wait(POLL_SECONDS)

    def count_rows(self) -> tuple[int, int]:
        cur = self.conn.cursor()
        cur.execute("SELECT count(*), coalesce(sum(duplicate_count), 0) FROM message_events")
        rows, dups = cur.fetchone()
        return int(rows), int(dups)


def _rss_mib(pid: int) -> float:
    return sum(env.rss_kib(p) for p in env.tree_pids(pid)) / 1024


TAKEN_OVER = re.compile(rb"took over (\d+) callbacks from a silent worker: \d+ stored now, (\d+)")


def run(
    rate: int = 1000,
    seconds: int = 60,
    workers: int = 2,
    kill_every: float | None = None,
    claim_idle_seconds: float = 5.0,
) -> E2EResult:
    """`kill_every`: SIGKILL one worker (in turn) every that many seconds while callbacks are
    offered, and start a replacement, as a crashing host or an OOM kill would; the dead worker's
    unacknowledged callbacks are taken over after `claim_idle_seconds`."""
    database_url = env.fresh_database()
    env.fresh_redis()
    port = 19000 + int(time.time()) % 1000
    # The default process count (2 per core): a sync worker waits out a slow client, so two would
    # let one stalled connection halve the capacity.
    web_env = env.base_env(database_url, PORT=str(port), WEB_CONCURRENCY="4")
    worker_env = env.base_env(database_url, LOG_LEVEL="INFO")
    if kill_every:
        worker_env.update(CLAIM_IDLE_SECONDS=str(claim_idle_seconds), CLAIM_INTERVAL_SECONDS="1")
    kills = 0
    total = rate * seconds
    requests_file, keys = _write_requests(total)
    samples: list[tuple[float, float]] = []
    web_peak = worker_peak = 0.0
    with env.processes() as procs:
        web = env.start("e2e-web", procfile_command("web"), web_env)
        procs.append(web)
        worker_procs = [env.start(f"e2e-worker-{i}", procfile_command("worker"), worker_env)
                        for i in range(workers)]  # fmt: skip
        procs.extend(worker_procs)
        wait_port(port, timeout=20)
        wait_workers_ready(web)
        for w in worker_procs:
            w.wait_for_output("draining", timeout=60)
        watcher = RowWatcher(database_url, keys)

        sampling = threading.Event()
        t0 = time.monotonic()

        def sample() -> None:
            nonlocal web_peak, worker_peak
            while not sampling.wait(1.0):
                web_peak = max(web_peak, _rss_mib(web.proc.pid))
                per_worker = [_rss_mib(w.proc.pid) for w in worker_procs]
                worker_peak = max(worker_peak, *per_worker)
                samples.append((time.monotonic() - t0, max(per_worker)))

        offering = threading.Event()

        def kill_workers() -> None:
            nonlocal kills
            rng = random.Random(7)
            # Jittered, so the kills land anywhere in a worker's read-store-acknowledge cycle.
            while not offering.wait(kill_every * rng.uniform(0.5, 1.5)):
                i = kills % len(worker_procs)
                worker_procs[i].proc.kill()  # SIGKILL: no shutdown, no acknowledgement
                worker_procs[i].proc.wait()
                kills += 1
                replacement = env.start(
                    f"e2e-worker-{workers + kills - 1}", procfile_command("worker"), worker_env
                )
                procs.append(replacement)
                worker_procs[i] = replacement
                print(f"    e2e: killed worker {i} (kill {kills}), replacement started",
                      flush=True)  # fmt: skip

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        watcher.start()
        killer = threading.Thread(target=kill_workers, daemon=True) if kill_every else None
        if killer:
            killer.start()
        wrk = _offer(port, rate, seconds, requests_file)
        offering.set()
        if killer:
            killer.join()
        acknowledged = wrk["acks"]
        print(
            f"    e2e: wrk sent {wrk['offered']:,} callbacks, {acknowledged:,} answered 2xx",
            flush=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(watcher.seen) < acknowledged:
            time.sleep(0.2)
        time.sleep(1.0)  # anything counted twice would show up by now
        sampling.set()
        watcher.stop.set()
        watcher.join()
        rows, dup_sum = watcher.count_rows()
    takeovers = [
        m for p in procs if p is not web for m in TAKEN_OVER.findall(p.log_path.read_bytes())
    ]
    taken_over = sum(int(n) for n, _ in takeovers)
    redelivered = sum(int(n) for _, n in takeovers)

    latencies = sorted(watcher.latency_ms)
    # Every callback is a distinct (sid, status): the audit trail must hold one row, with no
    # duplicates, per acknowledged callback. (More rows than acknowledgements can only be
    # callbacks the ingress took whose answer wrk missed: counted in `not acknowledged`.)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return E2EResult(
        rate=rate, seconds=seconds, offered=total, acknowledged=acknowledged,
        refused=total - acknowledged, p50_ms=q[49], p99_ms=q[98],
        max_ms=latencies[-1] if latencies else 0.0, lost=max(0, acknowledged - rows),
        double_counted=dup_sum, web_peak_rss_mib=web_peak, worker_peak_rss_mib=worker_peak,
        worker_rss_samples=samples,
        refusals={"non-2xx": wrk["refused"], "socket errors": wrk["socket_errors"]},
        workers_killed=kills, taken_over=taken_over, redelivered=redelivered,
    )  # fmt: skip


if __name__ == "__main__":
    import sys

    r = run(
        seconds=int(sys.argv[1]) if len(sys.argv) > 1 else 20,
        kill_every=float(sys.argv[2]) if len(sys.argv) > 2 else None,
    )
    r.worker_rss_samples = r.worker_rss_samples[-3:]
    print(r)
