"""Live stream under load: STREAMS open /api/stream connections while signed callbacks arrive at
a constant rate (wrk, new connection per callback, as in bench/e2e.py), all through the
Procfile's web command and 2 worker processes.

Measured: the callbacks' latency and acknowledgements (wrk), and each event's delivery latency on
PARSED of the streams (from the ingress's clock when it took the callback, the `at` of the
change, to the event's last byte read here); the other streams read and drop their bytes, as a
browser that keeps up would. Plus the CPU of the web processes and the workers per callback.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from bench import e2e, env
from devtools.ports import wait_port
from devtools.procfile import command as procfile_command
from devtools.sse_client import SseStream
from devtools.web_ready import wait_workers_ready

STREAMS = 200
PARSED = 10


@dataclass
class LiveResult:
    rate: int
    seconds: int
    streams: int
    streams_refused: int
    offered: int
    acknowledged: int
    callback_p50_ms: float
    callback_p99_ms: float
    events_expected: int  # per parsed stream
    events_min: int  # the fewest one parsed stream received
    event_p50_ms: float
    event_p99_ms: float
    event_max_ms: float
    web_cpu_us_per_callback: float
    worker_cpu_us_per_callback: float
    web_peak_rss_mib: float


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def run(rate: int = 1000, seconds: int = 30, streams: int = STREAMS) -> LiveResult:
    database_url = env.fresh_database()
    env.fresh_redis()
    port = 20000 + int(time.time()) % 1000
    web_env = env.base_env(database_url, PORT=str(port), WEB_CONCURRENCY="4")
    total = rate * seconds
    requests_file, keys = e2e._write_requests(total)
    expected = len(set(keys))
    with env.processes() as procs:
        web = env.start("live-web", procfile_command("web"), web_env)
        procs.append(web)
        workers = [env.start(f"live-worker-{i}", procfile_command("worker"),
                             env.base_env(database_url, LOG_LEVEL="INFO"))
                   for i in range(2)]  # fmt: skip
        procs.extend(workers)
        wait_port(port, timeout=20)
        wait_workers_ready(web)
        for w in workers:
            w.wait_for_output("draining", timeout=60)
        url = f"http://127.0.0.1:{port}/api/stream"
        bearer = {"Authorization": "Bearer bench"}
        opened = [SseStream(url, bearer, parse=i < PARSED) for i in range(streams)]
        refused = sum(s.status != 200 for s in opened)
        groups = {"web": lambda: env.tree_pids(web.proc.pid),
                  "workers": lambda: [p for w in workers for p in env.tree_pids(w.proc.pid)]}  # fmt: skip
        before = env.cpu_snapshot(groups)
        wrk = e2e._offer(port, rate, seconds, requests_file)
        # Every change reaches every parsed stream, or the wait ends.
        parsed = [s for s in opened[:PARSED] if s.status == 200]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(s.events.qsize() < expected for s in parsed):
            time.sleep(0.2)
        used = env.cpu_used(before, env.cpu_snapshot(groups))
        web_rss = sum(env.rss_kib(p, "VmHWM") for p in env.tree_pids(web.proc.pid)) / 1024
        for s in opened:
            s.close()
    latencies: list[float] = []
    counts = []
    for s in parsed:
        events = list(s.events.queue)
        counts.append(len(events))
        latencies += [(e.received - _epoch(e.json()["at"])) * 1000 for e in events]
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    acked = wrk["acks"] or 1
    return LiveResult(
        rate=rate, seconds=seconds, streams=streams, streams_refused=refused, offered=total,
        acknowledged=wrk["acks"], callback_p50_ms=wrk["p50_ms"], callback_p99_ms=wrk["p99_ms"],
        events_expected=expected, events_min=min(counts, default=0), event_p50_ms=q[49],
        event_p99_ms=q[98], event_max_ms=latencies[-1] if latencies else 0.0,
        web_cpu_us_per_callback=used["web"] / acked * 1e6,
        worker_cpu_us_per_callback=used["workers"] / acked * 1e6, web_peak_rss_mib=web_rss,
    )  # fmt: skip


def summary_lines(r: LiveResult) -> list[str]:
    return [
        "## Live stream",
        f"{r.streams} open `/api/stream` connections ({PARSED} parsed here, the others read and"
        f" dropped) while {r.rate:,} signed callbacks/s arrive for {r.seconds}s on new"
        " connections; gunicorn from the Procfile (4 processes) and 2 worker processes. Event"
        " latency: from the ingress taking the callback (its 200 follows at once) to the event's"
        " last byte on a stream, the drain's linger and commit included.",
        "",
        "| streams open (refused) | offered | acknowledged | callback p50 / p99 ms | events per parsed stream (fewest / expected) | event p50 / p99 / max ms | CPU µs per callback: web + workers | web peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r.streams - r.streams_refused} ({r.streams_refused}) | {r.offered:,} |"
        f" {r.acknowledged:,} | {r.callback_p50_ms:.1f} / {r.callback_p99_ms:.1f} |"
        f" {r.events_min:,} / {r.events_expected:,} | {r.event_p50_ms:.0f} / {r.event_p99_ms:.0f}"
        f" / {r.event_max_ms:.0f} | {r.web_cpu_us_per_callback:,.0f} +"
        f" {r.worker_cpu_us_per_callback:,.0f} | {r.web_peak_rss_mib:.0f} |",
        "",
    ]


if __name__ == "__main__":
    import sys

    result = run(seconds=int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(result)
    print("\n".join(summary_lines(result)))


def section(rate: int, seconds: int, checks: list[tuple[str, str, bool]]) -> list[str]:
    """`make bench`'s part (bench/__main__.py): the run, its table and its checks."""
    print(f"== live stream ({STREAMS} streams, {rate:,} callbacks/s)", flush=True)
    r = run(rate, seconds)
    checks.append((
        f"live: with {STREAMS} streams open, every callback acknowledged",
        f"{r.acknowledged:,}/{r.offered:,}, p99 {r.callback_p99_ms:.0f} ms",
        r.acknowledged == r.offered and r.streams_refused == 0,
    ))  # fmt: skip
    checks.append((
        "live: every change reaches every stream",
        f"{r.events_min:,}/{r.events_expected:,}, event p99 {r.event_p99_ms:,.0f} ms",
        r.events_min == r.events_expected,
    ))  # fmt: skip
    return summary_lines(r)
