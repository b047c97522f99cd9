"""Live stream under load: STREAMS open /api/stream connections while signed callbacks arrive at
a constant rate (wrk, new connection per callback, as in bench/e2e.py), all through the
Procfile's web command and 2 worker processes.

Measured: the callbacks' latency and acknowledgements (wrk), and each event's delivery latency on
PARSED of the streams (from the ingress's clock when it took the callback, the `at` of the
change, to the event's last byte read here); the other streams read and drop their bytes, as a
browser that keeps up would. The same load also runs with no stream open, so what the streams
cost the callbacks is the difference between two rows of one run, not a guess against another
host's figures. CPU per callback is split by process (web, workers, PostgreSQL, Redis, and the
load generator: wrk and this process's stream readers) and the machine's whole: on 2
cores everything shares one budget, and a host too slow for it runs out of CPU whatever the
web command does.
"""

from __future__ import annotations

import os
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
# Light load (issue 12: an event within 1 s of the callback's 200, the drain's linger included):
# a few callbacks a second, each alone in its batch, to a few streams, all parsed.
LIGHT_RATE, LIGHT_SECONDS, LIGHT_STREAMS = 20, 10, PARSED
LIGHT_MAX_MS = 1000.0
# 200 open streams must not delay the callbacks: their p99 stays within the ingress's own
# target, or (a host whose p99 is over it without any stream) within a few ms of that run's.
# Two runs of the same load differ by about that much on this machine kind.
P99_TARGET_MS = 15.0
STREAM_DELAY_MS = 5.0
CORES = os.cpu_count() or 1


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
    cpu_us_per_callback: dict[str, float]  # web, workers, PostgreSQL, Redis, load generator
    machine_cpu_us_per_callback: float  # everything the machine did, idle excluded
    machine_cores: float  # cores the machine's CPU per callback comes to at this rate
    web_peak_rss_mib: float


def _own_cpu_seconds() -> float:
    """This process (its stream readers) and its finished children (wrk)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


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
                  "workers": lambda: [p for w in workers for p in env.tree_pids(w.proc.pid)],
                  "PostgreSQL": lambda: env.pids_named("postgres"),
                  "Redis": lambda: env.pids_named("redis-server")}  # fmt: skip
        before = env.cpu_snapshot(groups)
        own_before, busy_before = _own_cpu_seconds(), env.machine_busy_seconds()
        wrk = e2e._offer(port, rate, seconds, requests_file)
        # Every change reaches every parsed stream, or the wait ends.
        parsed = [s for s in opened[:PARSED] if s.status == 200]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(s.events.qsize() < expected for s in parsed):
            time.sleep(0.2)
        used = env.cpu_used(before, env.cpu_snapshot(groups))
        used["load generator"] = _own_cpu_seconds() - own_before
        busy = env.machine_busy_seconds() - busy_before
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
        cpu_us_per_callback={k: v / acked * 1e6 for k, v in used.items()},
        machine_cpu_us_per_callback=busy / acked * 1e6,
        machine_cores=busy / acked * rate, web_peak_rss_mib=web_rss,
    )  # fmt: skip


HEADER = [
    "| callbacks/s | streams open (refused) | offered | acknowledged | callback p50 / p99 ms | events per parsed stream (fewest / expected) | event p50 / p99 / max ms | CPU µs per callback: web + workers + PostgreSQL + Redis + load generator | machine CPU µs per callback (cores at this rate) | web peak RSS (MiB) |",
    "|---|---|---|---|---|---|---|---|---|---|",
]  # fmt: skip


def row(r: LiveResult) -> str:
    split = " + ".join(f"{v:,.0f}" for v in r.cpu_us_per_callback.values())
    events = (
        f"{r.events_min:,} / {r.events_expected:,} | {r.event_p50_ms:.0f} / {r.event_p99_ms:.0f}"
        f" / {r.event_max_ms:.0f}"
        if r.streams
        else "– | –"
    )
    return (
        f"| {r.rate:,} | {r.streams - r.streams_refused} ({r.streams_refused}) | {r.offered:,} |"
        f" {r.acknowledged:,} | {r.callback_p50_ms:.1f} / {r.callback_p99_ms:.1f} | {events} |"
        f" {split} | {r.machine_cpu_us_per_callback:,.0f} ({r.machine_cores:.2f} of {CORES}) |"
        f" {r.web_peak_rss_mib:.0f} |"
    )


def summary_lines(results: list[LiveResult]) -> list[str]:
    r = results[-1]
    return [
        "## Live stream",
        f"{r.streams} open `/api/stream` connections ({PARSED} parsed here, the others read and"
        f" dropped) while {r.rate:,} signed callbacks/s arrive for {r.seconds}s on new"
        " connections; gunicorn from the Procfile (4 processes) and 2 worker processes. Before"
        f" it, on the same stack: light load ({LIGHT_RATE} callbacks/s for {LIGHT_SECONDS}s to"
        f" {LIGHT_STREAMS} streams, each callback alone in its batch), and the heavy load with"
        " no stream open. Event latency: from the ingress taking the callback (its 200 follows"
        " at once) to the event's last byte on a stream, the drain's linger (50 ms), its commit,"
        " the hub's read (at most every 0.1 s) and the writer's pass (at most every 0.25 s)"
        " included. The load generator is wrk and this benchmark's stream readers, on the same"
        " cores: the machine's CPU per callback is everything it did, divided by the callbacks"
        " acknowledged; times the rate, it is the cores the load needs here. On a host 2.8×"
        " slower (the slowest of this machine kind) that comes to 2.8 times as many.",
        "",
        *HEADER,
        *(row(x) for x in results),
        "",
    ]


def light() -> LiveResult:
    return run(LIGHT_RATE, LIGHT_SECONDS, streams=LIGHT_STREAMS)


def section(rate: int, seconds: int, checks: list[tuple[str, str, bool]]) -> list[str]:
    """`make bench`'s part (bench/__main__.py): the runs, their table and their checks."""
    print(f"== live stream (light load; no stream, then {STREAMS} streams, at {rate:,}/s)",
          flush=True)  # fmt: skip
    easy = light()
    checks.append((
        f"live: at light load ({LIGHT_RATE}/s) every event on its stream within"
        f" {LIGHT_MAX_MS / 1000:.0f} s of the callback",
        f"{easy.events_min:,}/{easy.events_expected:,} events, max {easy.event_max_ms:,.0f} ms,"
        f" p99 {easy.event_p99_ms:,.0f} ms",
        easy.events_min == easy.events_expected and easy.event_max_ms <= LIGHT_MAX_MS,
    ))  # fmt: skip
    alone = run(rate, seconds, streams=0)
    r = run(rate, seconds)
    checks.append((
        f"live: with {STREAMS} streams open, every callback acknowledged",
        f"{r.acknowledged:,}/{r.offered:,} ({alone.acknowledged:,} without streams), machine"
        f" {r.machine_cpu_us_per_callback:,.0f} µs per callback, {r.machine_cores:.2f} of"
        f" {CORES} cores",
        r.acknowledged == r.offered and r.streams_refused == 0,
    ))  # fmt: skip
    checks.append((
        f"live: {STREAMS} open streams do not delay the callbacks: p99 ≤ {P99_TARGET_MS:.0f} ms,"
        f" or ≤ {STREAM_DELAY_MS:.0f} ms over the run without streams",
        f"{r.callback_p99_ms:.1f} ms with, {alone.callback_p99_ms:.1f} ms without",
        r.callback_p99_ms <= max(P99_TARGET_MS, alone.callback_p99_ms + STREAM_DELAY_MS),
    ))  # fmt: skip
    checks.append((
        "live: every change reaches every stream",
        f"{r.events_min:,}/{r.events_expected:,}, event p99 {r.event_p99_ms:,.0f} ms",
        r.events_min == r.events_expected,
    ))  # fmt: skip
    return summary_lines([easy, alone, r])


if __name__ == "__main__":
    import sys

    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    runs = [light(), run(seconds=seconds, streams=0), run(seconds=seconds)]
    for result in runs:
        print(result)
    print("\n".join(summary_lines(runs)))
