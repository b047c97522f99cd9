"""Scaling out: three worker processes on one stream share 30,000 callbacks through the consumer
group. Each callback is stored once, and every worker did a fair part of the work (at least 15%),
as its own final log line says ("drain stopped after storing N callbacks")."""

from __future__ import annotations

import re
import signal

from tests.conftest import start_worker
from tests.integration.deploy.conftest import event_count, preload, stored_events
from tests.twilio_fixtures import new_sid
from tests.waiting import wait_for

WORKERS = 3
CALLBACKS = 30_000


def stored_by(output: str) -> int:
    (count,) = re.findall(r"drain stopped after storing (\d+) callbacks", output)
    return int(count)


def test_three_workers_share_one_stream_and_store_each_callback_once(spawn, env, db, redis_client):
    # Batches of 500 rather than 1,000: 60 batches to share out, not 30.
    env = {**env, "BATCH_SIZE": "500", "BATCH_LINGER_MS": "0"}
    workers = [start_worker(spawn, env) for _ in range(WORKERS)]
    sids = [new_sid() for _ in range(CALLBACKS)]
    preload(redis_client, env, sids)  # appears at once, while all three wait on the stream

    wait_for(lambda: event_count(db) == CALLBACKS and
             redis_client.xlen("statuspipe:callbacks") == 0,
             timeout=180, what="the backlog drained")  # fmt: skip
    for worker in workers:
        worker.proc.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.proc.wait(timeout=30) == 0, worker.output()[-3000:]

    stored = stored_events(db)
    assert sorted(stored) == sorted(sids)
    assert set(stored.values()) == {0}
    shares = [stored_by(w.output()) for w in workers]
    assert sum(shares) == CALLBACKS
    assert min(shares) >= 0.15 * CALLBACKS, shares
