"""The workers' counters in Redis: how a labelled value is spelled, and read back."""

import fakeredis
import pytest

from shared import worker_counters as wc


@pytest.mark.parametrize(
    ("family", "labels", "field"),
    [
        (wc.STORED, (), "callbacks_stored"),
        (wc.ACTIONS, ("retry", "sent"), "actions|retry|sent"),
        (wc.ACTIONS, ("contact_update", "updated"), "actions|contact_update|updated"),
    ],
)
def test_field_spelling(family, labels, field):
    assert family.field(*labels) == field


def test_a_field_needs_exactly_its_labels():
    with pytest.raises(ValueError, match="takes labels"):
        wc.ACTIONS.field("retry")


def test_read_sums_what_was_added_and_skips_unknown_fields():
    client = fakeredis.FakeRedis()
    pipe = client.pipeline()
    wc.add(pipe, "s", {wc.STORED.field(): 5, wc.BATCHES.field(): 1, wc.CLAIMED.field(): 0})
    pipe.execute()
    wc.add(client, "s", {wc.STORED.field(): 2, wc.ACTIONS.field("alert", "alerted"): 1})
    client.hset(wc.key("s"), mapping={"from_a_newer_worker": 9, "actions|too|many|labels": 1})
    totals = wc.read(client, "s")
    assert totals[wc.STORED] == {(): 7}
    assert totals[wc.BATCHES] == {(): 1}
    assert totals[wc.CLAIMED] == {}  # zero increments are not sent
    assert totals[wc.ACTIONS] == {("alert", "alerted"): 1}
    assert set(totals) == set(wc.FAMILIES)
    assert wc.read(client, "other-stream")[wc.STORED] == {}
