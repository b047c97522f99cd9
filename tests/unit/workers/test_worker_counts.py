"""What the workers add to their counters in Redis (exported by the ingress's /metrics)."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from shared import worker_counters as wc
from workers.actions import perform
from workers.drain.stats import counts
from workers.store import BatchResult

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


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


def test_finishing_an_action_returns_what_to_count_and_the_alerts_to_post():
    action = SimpleNamespace(kind="alert", id=2, message_sid="SM2", state="pending")
    alerts = [(7, datetime(2026, 11, 30, tzinfo=UTC))]
    nxt = perform._finish(action, "alerted", "counted in alert 7", NOW, alerts)
    assert (nxt.finished, nxt.post_alerts, nxt.run_again_in) == (("alert", "alerted"), alerts, None)
    assert (action.state, action.outcome, action.updated_at) == ("done", "alerted", NOW)
    retry = SimpleNamespace(kind="retry", id=1, message_sid="SM1", state="sending")
    assert perform._finish(retry, "sent", "resent", NOW) == perform.Next(finished=("retry", "sent"))
