"""SIGTERM to a drain worker with a batch in hand, as every rollout and scale-down does: the
worker commits and acknowledges that batch (or, when it cannot, leaves it pending for another
worker), exits within 30 s, and nothing is lost or stored twice."""

from __future__ import annotations

import signal

import redis
from sqlalchemy import text

from tests.conftest import start_worker
from tests.integration.deploy.conftest import preload, stored_events
from tests.twilio_fixtures import new_sid
from tests.waiting import wait_for

STOP_WITHIN_SECONDS = 30


def pending(client: redis.Redis, env: dict[str, str]) -> int:
    try:
        return client.xpending("statuspipe:callbacks", "statuspipe")["pending"]
    except redis.ResponseError as exc:  # before the group exists
        if "NOGROUP" not in str(exc):
            raise
        return 0


def stored_count(output: str) -> int:
    line = next(ln for ln in output.splitlines() if "drain stopped after storing" in ln)
    return int(line.split("drain stopped after storing ")[1].split()[0])


def test_sigterm_mid_batch_commits_the_batch_in_hand_and_exits(
    spawn, env, db, redis_client, pg_engine
):
    env = {**env, "BATCH_SIZE": "500", "BATCH_LINGER_MS": "0"}
    # Forty batches: a drain that read on after SIGTERM (it used to, until Celery stopped its
    # step) would store more than the batch in hand.
    sids = [new_sid() for _ in range(20_000)]
    preload(redis_client, env, sids)

    # Hold a lock the worker's transaction needs: its first batch is provably in hand, inside an
    # open transaction, when SIGTERM arrives.
    blocker = pg_engine.connect()
    try:
        blocker.begin()
        blocker.execute(text("LOCK TABLE callback_receipts IN ACCESS EXCLUSIVE MODE"))
        worker = start_worker(spawn, env)
        wait_for(lambda: pending(redis_client, env) > 0, timeout=60, what="a batch in hand")
        worker.proc.send_signal(signal.SIGTERM)
        # Logged once the drain's stop flag is set, so the lock goes while the batch is in hand.
        worker.wait_for_output("the drain finishes the batch in hand and stops")
    finally:
        blocker.close()  # the transaction can go on now
    assert worker.proc.wait(timeout=STOP_WITHIN_SECONDS) == 0, worker.output()[-3000:]

    # It stored its batch and acknowledged it: nothing left pending for a takeover.
    assert pending(redis_client, env) == 0
    first = stored_events(db)
    assert len(first) == stored_count(worker.output()) > 0
    assert len(first) <= int(env["BATCH_SIZE"]), len(first)  # the batch in hand, no more

    # A successor drains the rest; every callback is stored exactly once.
    successor = start_worker(spawn, env)
    wait_for(lambda: len(stored_events(db)) == len(sids), timeout=60, what="the rest drained")
    successor.stop()
    stored = stored_events(db)
    assert sorted(stored) == sorted(sids)
    assert set(stored.values()) == {0}
    assert redis_client.xlen("statuspipe:callbacks") == 0


def test_sigterm_while_draining_a_flood_loses_nothing_and_stores_nothing_twice(
    spawn, env, db, redis_client
):
    env = {**env, "BATCH_SIZE": "500", "BATCH_LINGER_MS": "0"}
    sids = [new_sid() for _ in range(20_000)]
    worker = start_worker(spawn, env)
    preload(redis_client, env, sids)
    wait_for(lambda: len(stored_events(db)) > 0, timeout=60, what="the drain under way")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=STOP_WITHIN_SECONDS) == 0, worker.output()[-3000:]
    assert pending(redis_client, env) == 0
    assert len(stored_events(db)) == stored_count(worker.output())

    successor = start_worker(spawn, env)
    wait_for(lambda: redis_client.xlen("statuspipe:callbacks") == 0, timeout=120,
             what="the rest drained")  # fmt: skip
    successor.stop()
    stored = stored_events(db)
    assert sorted(stored) == sorted(sids)
    assert set(stored.values()) == {0}
