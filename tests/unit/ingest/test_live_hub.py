"""The hub's reader (ingest/live/hub.py) over fakeredis: how it paces its reads of the feed."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from ingest.live import hub as hub_module
from ingest.live.hub import Hub
from tests.unit.ingest.test_stream_writer import KEY, WAIT, publish
from tests.waiting import wait_for


class GatedClient:
    """A Redis client whose XREADs wait for `gate`: what is published before it opens is
    there, all at once, for the hub's first read."""

    def __init__(self, real: fakeredis.FakeRedis) -> None:
        self.real = real
        self.gate = threading.Event()
        self.reads = 0

    def xread(self, *args, **kwargs):
        self.gate.wait()
        self.reads += 1
        return self.real.xread(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def gated(monkeypatch):
    monkeypatch.setattr(hub_module, "BLOCK_MS", 100)
    monkeypatch.setattr(hub_module, "ENTRIES_PER_READ", 2)
    # Far longer than the test waits: a read that waited out the interval would not be seen.
    monkeypatch.setattr(hub_module, "READ_EVERY_SECONDS", 60.0)
    return GatedClient(fakeredis.FakeRedis(server=fakeredis.FakeServer()))


def sids_after(hub: Hub, start) -> list[str]:
    return [item.change.sid for item in hub.after(start) or []]


def wait_for_sids(hub: Hub, start, count: int) -> list[str]:
    wait_for(lambda: len(sids_after(hub, start)) >= count, timeout=WAIT, what=f"{count} changes")
    return sids_after(hub, start)


def test_a_backlog_longer_than_one_read_is_read_through_without_waiting(gated):
    hub = Hub(lambda: gated, KEY, max_streams=10)
    start = hub.latest()  # starts the reader, held at the gate
    woken = threading.Semaphore(0)
    hub.on_change(woken.release)
    sids = [f"SM{i:032d}" for i in range(5)]
    for sid in sids:
        publish(gated.real, (sid, "sent"))
    gated.gate.set()

    # Reads of 2, 2 and 1 one after another; a full read does not wait the 60 s interval.
    assert wait_for_sids(hub, start, len(sids)) == sids
    assert gated.reads == 3
    assert all(woken.acquire(timeout=WAIT) for _ in range(3))  # the writer woken after each


def test_after_a_read_that_was_not_full_the_hub_waits_its_interval(gated):
    hub = Hub(lambda: gated, KEY, max_streams=10)
    start = hub.latest()
    publish(gated.real, ("SM" + "0" * 32, "sent"))
    gated.gate.set()
    assert wait_for_sids(hub, start, 1) == ["SM" + "0" * 32]

    publish(gated.real, ("SM" + "1" * 32, "sent"))
    time.sleep(0.5)  # BLOCK_MS and then some: without the interval it would be read by now
    assert sids_after(hub, start) == ["SM" + "0" * 32]
    assert gated.reads == 1
