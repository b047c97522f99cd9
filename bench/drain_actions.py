"""Drain with actions on against the same drain with them off (issue 10, "Speed").

With `ACT_ON_FAILURES=true` the drain decides, in each batch's transaction, what to do about the
batch's failures (one outbox row per failed message whose error code calls for an action) and,
after the commit, publishes one Celery message per batch to the `actions` queue. The two settings
alternate over the same callbacks, so the machine's drift falls on both alike; the medians are
compared. After every run with actions the database and the queue are checked: exactly one
action per failed message whose code maps to an action, of that kind, none for any other
message, and every action's id dispatched exactly once.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field

import redis
from sqlalchemy import create_engine, text

from bench import drain, env
from bench.data import Callback
from shared.bootstrap import error_code_map
from shared.config import load_settings
from shared.error_codes import ActionKinds, ErrorCodeMap
from workers.actions.decide import FAILURE_STATUSES
from workers.actions.dispatch import ACTIONS_QUEUE


def expected_actions(cbs: list[Callback], codes: ErrorCodeMap) -> dict[str, str]:
    """{message sid: action kind} the drain must record: failures whose code is acted on."""
    out: dict[str, str] = {}
    for cb in cbs:
        if cb.status not in FAILURE_STATUSES:
            continue
        code = cb.fields.get("ErrorCode")
        kind = codes.classify(int(code) if code else None).kind
        if kind is not ActionKinds.NONE:
            out[cb.sid] = str(kind)
    return out


@dataclass
class ActionsCheck:
    """One run's outbox against what the callbacks call for."""

    expected: int
    rows: int
    missing: int  # expected, no row
    unexpected: int  # a row for a delivered message, a `none` code, or twice for one message
    wrong_kind: int
    dispatched: int  # action ids found in the queue's messages
    dispatched_twice: int
    batches: int  # Celery messages in the queue (one per batch with actions)

    @property
    def ok(self) -> bool:
        return (
            self.rows == self.expected
            and not (self.missing or self.unexpected or self.wrong_kind or self.dispatched_twice)
            and self.dispatched == self.rows
        )


def _queued_action_ids(client: redis.Redis) -> tuple[list[int], int]:
    """Action ids in the Celery messages waiting in the `actions` queue (no actions worker runs
    during the drain), and the number of messages."""
    ids: list[int] = []
    raw_messages = client.lrange(ACTIONS_QUEUE, 0, -1)
    for raw in raw_messages:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        ids += [int(i) for i in args[0]]
    return ids, len(raw_messages)


def check_actions(database_url: str, expected: dict[str, str]) -> ActionsCheck:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, message_sid, kind FROM actions")).all()
    engine.dispose()
    by_sid = Counter(sid for _, sid, _ in rows)
    kinds = {sid: kind for _, sid, kind in rows}
    queued, batches = _queued_action_ids(redis.Redis.from_url(env.REDIS_URL))
    row_ids = {row_id for row_id, _, _ in rows}
    counted = Counter(i for i in queued if i in row_ids)
    return ActionsCheck(
        expected=len(expected),
        rows=len(rows),
        missing=len(set(expected) - set(by_sid)),
        unexpected=sum(n for sid, n in by_sid.items() if sid not in expected)
        + sum(n - 1 for n in by_sid.values() if n > 1),
        wrong_kind=sum(
            1 for sid, kind in kinds.items() if sid in expected and expected[sid] != kind
        ),
        dispatched=len(counted) + (len(queued) - sum(counted.values())),  # foreign ids count too
        dispatched_twice=sum(1 for n in counted.values() if n > 1),
        batches=batches,
    )


@dataclass
class DrainActionsResult:
    off: list[drain.DrainResult] = field(default_factory=list)
    on: list[drain.DrainResult] = field(default_factory=list)
    checks: list[ActionsCheck] = field(default_factory=list)  # one per run with actions
    kinds: Counter[str] = field(default_factory=Counter)  # expected actions by kind
    messages: int = 0

    @staticmethod
    def median(runs: list[drain.DrainResult]) -> drain.DrainResult:
        return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]

    @property
    def ratio(self) -> float:
        return self.median(self.on).rate / self.median(self.off).rate

    @property
    def acted_share(self) -> float:
        """Share of messages that end in a failure the drain acts on."""
        return sum(self.kinds.values()) / max(1, self.messages)

    @property
    def all_ok(self) -> bool:
        runs_ok = all(r.messages_ok and r.events_ok and r.counted_ok for r in self.off + self.on)
        return runs_ok and all(c.ok for c in self.checks)


def run(cbs: list[Callback], runs: int) -> DrainActionsResult:
    """`runs` drains with actions off and `runs` with them on, alternating (off first)."""
    expected = expected_actions(cbs, error_code_map(load_settings({})))
    result = DrainActionsResult(
        kinds=Counter(expected.values()), messages=len({c.sid for c in cbs})
    )
    for i in range(runs):
        off = drain.run_statuspipe(cbs, ACT_ON_FAILURES="false")
        result.off.append(off)
        print(f"    actions off, run {i + 1}/{runs}: {off.rate:,.0f}/s", flush=True)
        on = drain.run_statuspipe(cbs, ACT_ON_FAILURES="true")
        check = check_actions(on.database_url, expected)
        result.on.append(on)
        result.checks.append(check)
        print(
            f"    actions on,  run {i + 1}/{runs}: {on.rate:,.0f}/s; {check.rows:,} action rows"
            f" for {check.expected:,} expected, {check.dispatched:,} dispatched in"
            f" {check.batches:,} messages: {'ok' if check.ok else 'WRONG'} ({check})",
            flush=True,
        )
    return result
