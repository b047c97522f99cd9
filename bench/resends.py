"""The actions role's resends against the local fake Twilio (issue 10, "Speed"): reported, no target.

The whole path runs: messages are sent through `POST /api/messages` of a gunicorn started here,
the fake Twilio (in this process, reached by the real `twilio` client through
`TWILIO_API_BASE_URL`) posts signed `undelivered` / 30003 callbacks for them, a drain worker
stores them and writes one `retry` action each, and the `actions` role (the Procfile's command;
`TWILIO_MAX_RPS` 1000, `RETRY_BACKOFF_SECONDS` 0, `RETRY_MAX_ATTEMPTS` 2) resends them.

Two phases, on one stack:

1. throughput: the actions role is started only once every failure is stored, so it finds a
   backlog of N actions; resends/s is timed from its first resend to its last, as the fake
   received them, and the role's CPU read from /proc. The fake answers the resends' creates
   and posts no callbacks for them, so the run times the role alone.
2. latency: with the role running, N more messages are sent as fast as the API takes them and
   fail the same way; per message, the time from its action row's `created_at` (the drain's
   transaction) to the fake receiving the resend. Those resends fail too: with
   RETRY_MAX_ATTEMPTS=2 each ends in one `exhausted` action and an alert, as in production.

Both check exactly one resend (`Attempt=2`) per failed message and none beyond it.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench import env
from devtools.fake_twilio import FakeTwilio, RecordedRequest
from devtools.ports import free_port, wait_port
from devtools.procfile import command as procfile_command
from devtools.web_ready import wait_workers_ready

ACCOUNT = "AC" + "b" * 32
SENDER = "+15005550001"
SETTINGS = {
    "TWILIO_ACCOUNT_SID": ACCOUNT,
    "TWILIO_MAX_RPS": "1000",
    "RETRY_BACKOFF_SECONDS": "0",
    "RETRY_MAX_ATTEMPTS": "2",
}
SENDERS = 8  # client threads posting to the API
WAIT_SECONDS = 300.0
# Lines of the actions role's log that say something went wrong; the log sink's alerts (at
# WARNING, by design: the retries_exhausted alerts of phase 2) are not trouble.
TROUBLE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
ALERT_LINE = "workers.alerts.sinks: alert {"


@dataclass(frozen=True)
class CreateSeen:
    at: float  # wall clock, when the fake received the request
    to: str
    attempt: int
    status: int


class TimedFake(FakeTwilio):
    """The fake Twilio, noting when each message create arrived, its To, Attempt and answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creates: list[CreateSeen] = []  # list.append is atomic: no lock needed

    def handle(self, request: RecordedRequest, authorization: str | None) -> Any:
        at = time.time()
        reply = super().handle(request, authorization)
        if request.method == "POST" and request.path.endswith("/Messages.json"):
            attempt = int(request.value("Attempt") or 1)
            self.creates.append(CreateSeen(at, request.value("To") or "", attempt, reply.status))
        return reply


@dataclass
class Phase:
    name: str
    messages: int
    send_seconds: float = 0.0  # the N originals through POST /api/messages
    resends: int = 0  # creates with Attempt=2 for these messages
    first_resend: float = 0.0
    last_resend: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the actions role (all its processes), phase 1 only
    once_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def sends_per_second(self) -> float:
        return self.messages / self.send_seconds if self.send_seconds else 0.0

    @property
    def resends_per_second(self) -> float:
        span = self.last_resend - self.first_resend
        return (self.resends - 1) / span if self.resends > 1 and span > 0 else 0.0

    @property
    def cpu_us_per_resend(self) -> float:
        return self.cpu_seconds / self.resends * 1e6 if self.resends else 0.0

    def latency_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


@dataclass
class ResendResult:
    throughput: Phase
    latency: Phase
    log_trouble: list[str]  # WARNING/ERROR lines of the actions role's log

    @property
    def ok(self) -> bool:
        return self.throughput.once_ok and self.latency.once_ok


def _numbers(start: int, n: int) -> list[str]:
    """Distinct recipients, so every create at the fake is attributed to one message."""
    return [f"+1555{start + i:07d}" for i in range(n)]


def _send_all(base: str, numbers: list[str]) -> tuple[dict[str, str], float]:
    """POST one message to each number through the API, SENDERS at a time: {to: sid}, seconds."""
    local = threading.local()

    def send(to: str) -> tuple[str, str]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.post(
            f"{base}/api/messages",
            json={"to": to, "body": f"statuspipe bench to {to}", "from": SENDER},
            headers={"Authorization": "Bearer bench"},
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(
                f"POST /api/messages answered {response.status_code}: {response.text}"
            )
        return to, response.json()["sid"]

    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        sids = dict(pool.map(send, numbers))
    return sids, time.monotonic() - started


def _wait(what: str, done: Callable[[], bool], procs: list[Any]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not done():
        for p in procs:
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited; see {p.log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {WAIT_SECONDS:.0f}s")
        time.sleep(0.05)


def _scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.scalar(text(sql), params)


def _action_times(engine: Engine, sids: list[str]) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT message_sid, created_at FROM actions WHERE message_sid = ANY(:sids)"),
            {"sids": sids},
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def _check_once(fake: TimedFake, numbers: list[str], phase: Phase) -> None:
    """Per recipient: one original, exactly one resend (Attempt=2), nothing beyond."""
    wanted = set(numbers)
    made = [c for c in fake.creates if c.to in wanted and c.status == 201]
    by_attempt = Counter((c.to, c.attempt) for c in made)
    firsts = sum(1 for to in numbers if by_attempt[(to, 1)] == 1)
    resends = sum(1 for to in numbers if by_attempt[(to, 2)] == 1)
    doubled = sum(1 for (_to, attempt), n in by_attempt.items() if attempt == 2 and n > 1)
    beyond = sum(n for (_to, attempt), n in by_attempt.items() if attempt > 2)
    refused = [c for c in fake.creates if c.to in wanted and c.status != 201]
    if firsts != len(numbers):
        phase.problems.append(f"{len(numbers) - firsts} messages without exactly one first send")
    if resends != len(numbers):
        phase.problems.append(f"{len(numbers) - resends} messages without exactly one resend")
    if doubled:
        phase.problems.append(f"{doubled} messages resent twice")
    if beyond:
        phase.problems.append(f"{beyond} creates with Attempt > 2")
    if refused:
        phase.problems.append(f"{len(refused)} creates refused by the fake")
    phase.once_ok = not phase.problems


def _resend_span(fake: TimedFake, numbers: list[str], phase: Phase) -> dict[str, float]:
    wanted = set(numbers)
    seen = {c.to: c.at for c in fake.creates if c.to in wanted and c.attempt == 2}
    phase.resends = len(seen)
    if seen:
        phase.first_resend, phase.last_resend = min(seen.values()), max(seen.values())
    return seen


def run(n: int = 2000) -> ResendResult:
    database_url = env.fresh_database()
    env.fresh_redis()
    engine = create_engine(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        TimedFake(account_sid=ACCOUNT, auth_token=env.AUTH_TOKEN, callback_workers=8) as fake,
        env.processes() as procs,
    ):
        fake.routes[env.PUBLIC_URL] = base
        settings = {**SETTINGS, "TWILIO_API_BASE_URL": fake.base_url}
        web_env = env.base_env(database_url, PORT=str(port), **settings)
        worker_env = env.base_env(database_url, LOG_LEVEL="INFO", **settings)
        web = env.start("resends-web", procfile_command("web"), web_env)
        procs.append(web)
        procs.append(env.start("resends-worker", procfile_command("worker"), worker_env))
        wait_port(port, timeout=30)
        wait_workers_ready(web)
        procs[1].wait_for_output("workers.drain: draining ", timeout=60)

        # 1. Throughput: a backlog of N retry actions, then the role.
        first = Phase("backlog", n)
        numbers = _numbers(0, n)
        fake.auto_deliver("undelivered", 30003)
        _, first.send_seconds = _send_all(base, numbers)
        print(f"    resends: {n:,} sent through the API in {first.send_seconds:.1f}s;"
              " waiting for their failures to be stored", flush=True)  # fmt: skip
        _wait("the failures' actions", lambda: _scalar(
            engine, "SELECT count(*) FROM actions WHERE kind = 'retry'") >= n, procs)  # fmt: skip
        fake.wait_idle()
        fake.auto_deliver(None)  # the resends' own callbacks are the drain's work, not timed here
        actions = env.start("resends-actions", procfile_command("actions"), worker_env)
        procs.append(actions)
        actions.wait_for_output(" ready.", timeout=60)
        groups = {"actions": lambda: env.tree_pids(actions.proc.pid)}
        cpu_before = env.cpu_snapshot(groups)
        _wait("the resends", lambda: _scalar(
            engine, "SELECT count(*) FROM actions WHERE state = 'done'") >= n, procs)  # fmt: skip
        first.cpu_seconds = env.cpu_used(cpu_before, env.cpu_snapshot(groups))["actions"]
        _resend_span(fake, numbers, first)
        print(f"    resends: backlog of {n:,} done, {first.resends_per_second:,.0f}/s", flush=True)

        # 2. Latency: the role running while N more messages fail.
        second = Phase("steady", n)
        numbers2 = _numbers(n, n)
        fake.auto_deliver("undelivered", 30003)
        sids2, second.send_seconds = _send_all(base, numbers2)
        # Each ends with two done actions: the retry (sent) and, once the resend failed too,
        # `exhausted` for the resend's sid.
        _wait("the second phase's actions", lambda: _scalar(
            engine, "SELECT count(*) FROM actions WHERE state = 'done'") >= 3 * n, procs)  # fmt: skip
        fake.wait_idle()
        time.sleep(2.0)  # room for a wrong extra resend to show before counting
        seen = _resend_span(fake, numbers2, second)
        created = _action_times(engine, list(sids2.values()))
        second.latencies_ms = [
            (seen[to] - created[sid].timestamp()) * 1000
            for to, sid in sids2.items()
            if to in seen and sid in created
        ]
        _check_once(fake, numbers, first)
        _check_once(fake, numbers2, second)
        with engine.connect() as conn:
            outcomes = dict(
                conn.execute(text("SELECT outcome, count(*) FROM actions GROUP BY outcome")).all()
            )
        if outcomes.get("sent", 0) != 2 * n or outcomes.get("exhausted", 0) != n:
            second.problems.append(f"action outcomes {outcomes}: expected {2 * n} sent,"
                                   f" {n} exhausted")  # fmt: skip
            second.once_ok = False
        log = actions.output()
    engine.dispose()
    trouble = [ln for ln in log.splitlines() if TROUBLE.search(ln) and ALERT_LINE not in ln]
    return ResendResult(first, second, trouble)


if __name__ == "__main__":
    import sys

    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
    for phase in (result.throughput, result.latency):
        print(
            f"{phase.name}: {phase.resends:,} resends, {phase.resends_per_second:,.0f}/s, API"
            f" {phase.sends_per_second:,.0f}/s, p50 {phase.latency_ms(50):.0f} ms, p99"
            f" {phase.latency_ms(99):.0f} ms, CPU {phase.cpu_us_per_resend:,.0f} µs/resend,"
            f" once {phase.once_ok} {phase.problems}"
        )
    print("\n".join(result.log_trouble[:20]))
