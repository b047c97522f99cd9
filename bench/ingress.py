"""Ingress: the statuspipe ingress (signature validation on, one Redis round trip) against a bare
Flask app that only answers 200, under the same gunicorn settings and the same wrk load."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from twilio.request_validator import RequestValidator

from bench import env
from bench.data import callbacks, signature
from devtools.ports import wait_port
from devtools.procfile import command as procfile_command
from devtools.web_ready import wait_workers_ready

CONNECTIONS = 16


@dataclass
class IngressResult:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    peak_rss_mib: float
    machine_cpu_us: float  # the whole machine's busy CPU per answered request (wrk included)


# The shared-key run (issue 13): Twilio signs with a Webhook Setting's key and HMAC-SHA256.
SHARED_KEY_ID, SHARED_KEY_SECRET = "bench_key", "bench-shared-key-secret-0123456789"
SHARED_KEY_SETTINGS = f"key={SHARED_KEY_ID},algorithm=HMAC_SHA256"


def write_requests(count: int = 2000, shared_key: bool = False) -> str:
    """One request a line: signature, idempotency token, body, and (shared key) the
    X-Twilio-Webhooks-Signature-Settings header."""
    path = env.OUT / ("signed-requests-sha256.tsv" if shared_key else "signed-requests.tsv")
    env.OUT.mkdir(parents=True, exist_ok=True)
    url = f"{env.PUBLIC_URL}/twilio/status"
    with path.open("w") as out:
        for cb in callbacks(count, seed=11):
            if shared_key:
                sig = RequestValidator(SHARED_KEY_SECRET).compute_signature(
                    url, cb.fields, "HMAC_SHA256"
                )
                out.write(f"{sig}\t{cb.token}\t{cb.body.decode()}\t{SHARED_KEY_SETTINGS}\n")
            else:
                sig = signature(url, cb, env.AUTH_TOKEN)
                out.write(f"{sig}\t{cb.token}\t{cb.body.decode()}\n")
    return str(path)


def _wrk(port: int, seconds: int, requests_file: str) -> dict:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
           "-s", str(env.ROOT / "bench" / "wrk_signed.lua"), f"http://127.0.0.1:{port}",
           "--", requests_file]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def measure(
    name: str, app: str, seconds: int, requests_file: str, database_url: str, **extra_env: str
) -> IngressResult:
    port = 18000 + int(time.time()) % 1000
    # No WEB_CONCURRENCY: both apps run with the shipped default (ingest/gunicorn_conf.py,
    # two sync workers per core), the setting an operator gets.
    run_env = env.base_env(database_url, PORT=str(port), **extra_env)
    argv = [a if a != "ingest.wsgi:app" else app for a in procfile_command("web")]
    with env.processes() as procs:
        web = env.start(f"ingress-{app.split(':')[0]}", argv, run_env)
        procs.append(web)
        wait_port(port, timeout=20)
        wait_workers_ready(web)
        _wrk(port, 2, requests_file)  # warm up: imports, connections
        busy_before = env.machine_busy_seconds()
        result = _wrk(port, seconds, requests_file)
        busy = env.machine_busy_seconds() - busy_before
        peak = sum(env.rss_kib(pid, "VmHWM") for pid in env.tree_pids(web.proc.pid))
    return IngressResult(
        name,
        result["requests"] / result["seconds"],
        result["p50_ms"],
        result["p99_ms"],
        result["non2xx"],
        result["socket_errors"],
        peak / 1024,
        busy / max(result["requests"], 1) * 1e6,
    )


ROUNDS = 2


def _combine(rounds: list[IngressResult]) -> IngressResult:
    """Mean rate and latencies over the rounds; errors summed, the highest peak RSS."""
    n = len(rounds)
    return IngressResult(
        rounds[0].name,
        sum(r.requests_per_second for r in rounds) / n,
        sum(r.p50_ms for r in rounds) / n,
        sum(r.p99_ms for r in rounds) / n,
        sum(r.non2xx for r in rounds),
        sum(r.socket_errors for r in rounds),
        max(r.peak_rss_mib for r in rounds),
        sum(r.machine_cpu_us for r in rounds) / n,
    )


@dataclass
class IngressRun:
    bare: IngressResult
    ours: IngressResult
    shared_key: IngressResult | None  # callbacks signed with a shared key, HMAC-SHA256
    no_ledger: IngressResult | None  # the ingress with its ledger off (bench/no_ledger_app.py)

    def ratio(self, result: IngressResult) -> float:
        return result.requests_per_second / self.bare.requests_per_second


def run(
    seconds: int = 15, rounds: int = ROUNDS, shared_key: bool = True, no_ledger: bool = True
) -> IngressRun:
    """Bare app and statuspipe alternate, `rounds` times each: the machine's load drifts over a
    run, and a single pair put that drift into the ratio (0.71x to 1.06x between runs).

    With `shared_key`, each round also runs statuspipe on callbacks signed with a shared key and
    HMAC-SHA256; with `no_ledger`, statuspipe with its ledger off: each against the same bare
    runs."""
    database_url = env.fresh_database()
    client = env.fresh_redis()
    requests_file = write_requests()
    sha256_file = write_requests(shared_key=True) if shared_key else ""
    bare_runs: list[IngressResult] = []
    our_runs: list[IngressResult] = []
    sha256_runs: list[IngressResult] = []
    no_ledger_runs: list[IngressResult] = []
    for _ in range(rounds):
        if shared_key:
            sha256_runs.append(
                measure("statuspipe ingress (shared key, HMAC-SHA256, XADD)", "ingest.wsgi:app",
                        seconds, sha256_file, database_url,
                        TWILIO_SHARED_KEYS=f"{SHARED_KEY_ID}={SHARED_KEY_SECRET}")
            )  # fmt: skip
        bare_runs.append(
            measure("bare Flask, answers 200", "bench.bare_app:app", seconds, requests_file,
                    database_url)
        )  # fmt: skip
        our_runs.append(
            measure("statuspipe ingress (signature on, XADD)", "ingest.wsgi:app", seconds,
                    requests_file, database_url)
        )  # fmt: skip
        if no_ledger:
            no_ledger_runs.append(
                measure("statuspipe ingress, ledger off (for its cost)", "bench.no_ledger_app:app",
                        seconds, requests_file, database_url)
            )  # fmt: skip
    result = IngressRun(
        _combine(bare_runs),
        _combine(our_runs),
        _combine(sha256_runs) if sha256_runs else None,
        _combine(no_ledger_runs) if no_ledger_runs else None,
    )
    accepted = client.xlen(load_stream_key())
    client.delete(load_stream_key())
    refused = sum(r.non2xx for r in (result.ours, result.shared_key, result.no_ledger) if r)
    if accepted == 0 or refused:
        raise RuntimeError(f"ingress answered {refused} non-2xx; stream holds {accepted}")
    for i, (b, o) in enumerate(zip(bare_runs, our_runs, strict=True)):
        extra = f", shared key {sha256_runs[i].requests_per_second:,.0f}/s" if sha256_runs else ""
        if no_ledger_runs:
            extra += f", ledger off {no_ledger_runs[i].requests_per_second:,.0f}/s"
        print(f"    round: bare {b.requests_per_second:,.0f}/s, statuspipe"
              f" {o.requests_per_second:,.0f}/s{extra}", flush=True)  # fmt: skip
    return result


def load_stream_key() -> str:
    from shared.config import load_settings

    return load_settings({}).stream_key


if __name__ == "__main__":
    print(run(10))
