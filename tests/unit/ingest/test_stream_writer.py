"""The stream writer (ingest/live/writer.py) with the process's hub over fakeredis, and socket
pairs for connections: what each stream is sent, in which framing, and when it is let go."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import fakeredis
import pytest

from ingest.live import hub as hub_module
from ingest.live import writer as writer_module
from ingest.live.hub import Hub
from ingest.live.items import Filters
from ingest.live.priority import LOWEST, NICENESS
from ingest.live.writer import StreamWriter
from shared import changes
from shared.changes import Position

KEY = "test:changes"
WAIT = 10.0


@pytest.fixture
def redis_client():
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def writer(redis_client, monkeypatch):
    monkeypatch.setattr(hub_module, "BLOCK_MS", 100)  # the hub's XREAD returns soon when idle
    hub = Hub(lambda: redis_client, KEY, max_streams=10)
    stream_writer = StreamWriter(hub, redis_client)
    yield stream_writer
    stream_writer.close()
    for client in CLIENTS:
        client.close()
    CLIENTS.clear()


CLIENTS: list[socket.socket] = []  # this test's client ends, closed after it


def publish(client, *sids_statuses: tuple[str, str], to: str = "+15550001111") -> str:
    wire = [(sid, status, None, None, to, "+15550002222", 1_800_000_000.0)
            for sid, status in sids_statuses]  # fmt: skip
    return client.xadd(KEY, {changes.FIELD: changes.encode(wire)}).decode()


EVERYTHING = Filters()


def connect(writer: StreamWriter, position: Position, filters=EVERYTHING, chunked=False,
            send_buffer: int | None = None) -> socket.socket:  # fmt: skip
    """A stream as the web worker hands it over: the server end attached, the client end
    returned (with a timeout for reads)."""
    assert writer.hub.join()
    server, client = socket.socketpair()
    if send_buffer:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    client.settimeout(WAIT)
    CLIENTS.append(client)
    writer.attach(server, position, filters, chunked)
    return client


def read_until(client: socket.socket, predicate) -> bytes:
    got = b""
    deadline = time.monotonic() + WAIT
    while not predicate(got):
        assert time.monotonic() < deadline, got
        chunk = client.recv(65536)
        assert chunk, f"closed after {got!r}"
        got += chunk
    return got


def event_ids(body: bytes) -> list[str]:
    return [line[4:] for line in body.decode().splitlines() if line.startswith("id: ")]


def unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        out, body = out + rest[:n], rest[n + 2 :]
        assert rest[n : n + 2] == b"\r\n"
    return out


def test_changes_reach_streams_in_both_framings(writer, redis_client):
    start = writer.hub.latest()
    plain = connect(writer, start)
    chunked = connect(writer, start, chunked=True)
    entry = publish(redis_client, ("SM1", "sent"), ("SM2", "delivered"))
    expected = [f"{entry}.0", f"{entry}.1"]

    body = read_until(plain, lambda b: len(event_ids(b)) == 2)
    assert event_ids(body) == expected
    framed = read_until(chunked, lambda b: b.endswith(b"\r\n") and b.count(b"id: ") == 2)
    assert event_ids(unchunk(framed)) == expected
    assert b'"sid":"SM2","status":"delivered"' in unchunk(framed)


def test_a_stream_gets_only_what_its_filters_match(writer, redis_client):
    start = writer.hub.latest()
    only = connect(writer, start, Filters(sid="SM2", statuses=frozenset({"delivered"})))
    every = connect(writer, start)
    publish(redis_client, ("SM1", "delivered"), ("SM2", "sent"))
    last = publish(redis_client, ("SM2", "delivered"))
    read_until(every, lambda b: len(event_ids(b)) == 3)
    assert event_ids(read_until(only, lambda b: b"id: " in b)) == [f"{last}.0"]


def test_a_resume_from_before_what_the_hub_keeps_gets_every_change_from_redis(writer, redis_client):
    first = publish(redis_client, ("SM0", "sent"))
    writer.hub.latest()  # the hub follows from here on
    entries = [publish(redis_client, (f"SM{i}", "sent")) for i in range(1, 301)]
    deadline = time.monotonic() + WAIT
    while writer.hub.latest() != Position(entries[-1]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.hub.after(Position(first)) is None  # 300 entries: more than the hub keeps
    client = connect(writer, Position(first))
    body = read_until(client, lambda b: len(event_ids(b)) == 300)
    assert event_ids(body) == [f"{e}.0" for e in entries]


def test_a_client_that_leaves_gives_its_place_back(writer):
    client = connect(writer, writer.hub.latest())
    assert writer.hub.streams == 1
    client.close()
    deadline = time.monotonic() + WAIT
    while writer.hub.streams and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.hub.streams == 0


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own priority is Linux's")
def test_the_stream_threads_run_below_the_callbacks_priority(writer, redis_client):
    client = connect(writer, writer.hub.latest())
    publish(redis_client, ("SM1", "sent"))
    read_until(client, lambda b: b"SM1" in b)  # both threads are running
    own = os.getpriority(os.PRIO_PROCESS, 0)  # the callbacks' thread (this one) as it was
    for thread in (writer._thread, writer.hub._thread):
        assert thread is not None
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == min(own + NICENESS, LOWEST)
    assert os.getpriority(os.PRIO_PROCESS, 0) == own


def test_an_idle_stream_gets_heartbeats(writer, monkeypatch):
    monkeypatch.setattr(writer_module, "HEARTBEAT_SECONDS", 0.2)
    client = connect(writer, writer.hub.latest())
    assert read_until(client, lambda b: b.count(b": heartbeat\n\n") >= 2)


def test_a_client_that_reads_nothing_is_cut_off_and_the_others_go_on(
    writer, redis_client, monkeypatch
):
    monkeypatch.setattr(writer_module, "HIGH_WATER_BYTES", 4096)
    monkeypatch.setattr(writer_module, "SLOW_CLIENT_SECONDS", 0.5)
    start = writer.hub.latest()
    connect(writer, start, send_buffer=4096)  # and never read
    reader = connect(writer, start)
    received = []
    threading.Thread(target=lambda: received.append(read_until(reader, lambda b: b"SM-last" in b)),
                     daemon=True).start()  # fmt: skip
    for i in range(40):  # about 200 KB: more than the stuck client's buffers hold
        publish(redis_client, *[(f"SM{i}-{j}", "sent") for j in range(25)])
    publish(redis_client, ("SM-last", "delivered"))
    deadline = time.monotonic() + WAIT
    while writer.hub.streams > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.hub.streams == 1  # the stuck one is gone
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received
    assert b"SM-last" in received[0]


def test_closing_the_writer_ends_every_stream(writer):
    clients = [connect(writer, writer.hub.latest()) for _ in range(3)]
    writer.close()
    assert [c.recv(100) for c in clients] == [b""] * 3
    assert writer.hub.streams == 0
