"""What the workers add to their counters in Redis (exported by the ingress's /metrics)."""

import threading
from types import SimpleNamespace

import pytest

from shared import worker_counters as wc
from workers.actions import perform
from workers.drain.stats import counts
from workers.store import BatchResult


@pytest.mark.parametrize(
    ("stored", "new_pairs", "redelivered", "dead", "claimed", "duplicates"),
    [
        (10, 10, 0, 0, 0, 0),  # every callback a new (message, status)
        (10, 7, 0, 0, 0, 3),  # three repeated a pair
        (0, 0, 5, 0, 5, 0),  # taken over, all stored already by the dead worker
        (3, 3, 0, 2, 0, 0),  # two dead-lettered
    ],
)
def test_one_batch_as_counter_increments(stored, new_pairs, redelivered, dead, claimed, duplicates):
    result = BatchResult(stored=stored, redelivered=redelivered, dead=dead)
    result.changes = [object()] * new_pairs  # the new audit rows
    assert counts(result, claimed) == {
        wc.STORED.field(): stored,
        wc.DUPLICATES.field(): duplicates,
        wc.REDELIVERED.field(): redelivered,
        wc.DEAD_LETTERED.field(): dead,
        wc.CLAIMED.field(): claimed,
        wc.BATCHES.field(): 1,
    }


def test_finished_actions_are_taken_once_and_per_thread():
    now = None
    perform.take_finished()
    perform._finish(SimpleNamespace(kind="retry", id=1, message_sid="SM1"), "sent", "d", now)
    perform._finish(SimpleNamespace(kind="alert", id=2, message_sid="SM2"), "alerted", "d", now)
    other: list = []
    thread = threading.Thread(target=lambda: other.extend(perform.take_finished()))
    thread.start()
    thread.join()
    assert other == []  # another thread finished nothing
    assert perform.take_finished() == [("retry", "sent"), ("alert", "alerted")]
    assert perform.take_finished() == []
