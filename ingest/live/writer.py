"""One thread per web process writes every open stream, so an open stream costs a socket and a
few hundred bytes, never a request thread (ingest/web_worker.py hands each stream's connection
over once its headers are sent).

The thread waits on a selector: a wake-up from the hub when changes arrive or a stream is
handed over, readable sockets (a client that closed), writable sockets (a slow client's
backlog). Each pass takes, for every stream, the changes after its position from the hub, or
from Redis when it is behind what the hub keeps (a resume with Last-Event-ID), filters them and
sends them without blocking. Passes are at most FLUSH_SECONDS apart under load: a stream then
gets a few large writes a second instead of one per batch per worker (bench/live.py).

A client that reads too slowly is cut off once it holds SLOW_CLIENT_SECONDS of unsent output;
its EventSource reconnects with Last-Event-ID and resumes without a gap.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

import redis

from ingest.live import feed
from ingest.live.hub import Hub
from ingest.live.items import Filters
from ingest.live.priority import yield_cpu_to_callbacks
from shared.changes import Position

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
FLUSH_SECONDS = 0.25
CATCH_UP_CHUNK = 1000
HIGH_WATER_BYTES = 256 * 1024  # unsent output past which a stream takes no more changes
SLOW_CLIENT_SECONDS = 30.0
HEARTBEAT = b": heartbeat\n\n"


@dataclass(eq=False)
class Subscriber:
    sock: socket.socket
    position: Position
    filters: Filters
    chunked: bool  # HTTP/1.1: each write is one chunk; HTTP/1.0: the body ends at close
    out: bytearray = field(default_factory=bytearray)
    last_queued: float = field(default_factory=time.monotonic)
    blocked_since: float | None = None  # when its unsent output last passed HIGH_WATER_BYTES
    waiting_to_write: bool = False  # registered for EVENT_WRITE: its socket took not all

    def queue(self, text: bytes, now: float) -> None:
        if self.chunked:
            self.out += b"%x\r\n" % len(text) + text + b"\r\n"
        else:
            self.out += text
        self.last_queued = now

    def flush(self) -> None:
        """Send what the socket takes now; raises OSError when the client is gone."""
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            del self.out[:sent]


@dataclass(frozen=True)
class PendingStream:
    """An accepted stream on its way from the view to the writer (ingest/stream_handoff.py)."""

    writer: StreamWriter
    position: Position
    filters: Filters

    def handoff(self, position: Position, filters: Filters) -> PendingStream:
        return PendingStream(self, position, filters)

    def attach(self, sock: socket.socket, chunked: bool) -> None:
        self.writer.attach(sock, self.position, self.filters, chunked)

    def cancel(self) -> None:
        self.writer.hub.leave()


class StreamWriter:
    def __init__(self, hub: Hub, reader: redis.Redis) -> None:
        self._hub = hub
        self._reader = reader
        self._lock = threading.Lock()
        self._arrivals: list[Subscriber] = []
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_send: socket.socket | None = None
        self._closing = False

    @property
    def hub(self) -> Hub:
        return self._hub

    def handoff(self, position: Position, filters: Filters) -> PendingStream:
        return PendingStream(self, position, filters)

    def attach(
        self, sock: socket.socket, position: Position, filters: Filters, chunked: bool
    ) -> None:
        """Take over `sock`, whose response headers (and first bytes) are sent already."""
        sock.setblocking(False)
        with self._lock:
            if self._closing:
                sock.close()
                self._hub.leave()
                return
            self._start()
            self._arrivals.append(Subscriber(sock, position, filters, chunked))
        self.wake()

    def close(self, timeout: float = 5.0) -> None:
        """Close every stream and stop the thread (its clients reconnect elsewhere)."""
        with self._lock:
            self._closing = True
            thread = self._thread
        self.wake()
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        wake = self._wake_send
        if wake is not None:
            with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
                wake.send(b"\0")

    # --- the writer thread ------------------------------------------------------------------

    def _start(self) -> None:
        """With the lock held: start the thread with the process's first stream."""
        if self._thread is not None and self._thread.is_alive():
            return
        selector = selectors.DefaultSelector()
        wake_recv, wake_send = socket.socketpair()
        wake_recv.setblocking(False)
        wake_send.setblocking(False)
        selector.register(wake_recv, selectors.EVENT_READ)
        self._selector, self._wake_send = selector, wake_send
        self._hub.on_change(self.wake)
        self._thread = threading.Thread(
            target=self._run, args=(selector, wake_recv), name="stream-writer", daemon=True
        )
        self._thread.start()

    def _run(self, selector: selectors.BaseSelector, wake_recv: socket.socket) -> None:
        yield_cpu_to_callbacks()
        last_pass = 0.0
        due = True  # changes or arrivals not looked at yet
        try:
            while not self._closing:
                last_pass, due = self._turn(selector, wake_recv, last_pass, due)
        finally:
            self._take_arrivals(selector)
            for sub in list(self._subscribers):
                self._drop(sub)
            selector.close()
            wake_recv.close()
            if self._wake_send is not None:
                self._wake_send.close()

    def _turn(
        self,
        selector: selectors.BaseSelector,
        wake_recv: socket.socket,
        last_pass: float,
        due: bool,
    ) -> tuple[float, bool]:
        """Wait for something to do, and do it."""
        now = time.monotonic()
        timeout = max(0.0, last_pass + FLUSH_SECONDS - now) if due else self._until_heartbeat(now)
        for key, mask in selector.select(timeout):
            sock = key.fileobj
            if sock is wake_recv:
                with contextlib.suppress(BlockingIOError):
                    wake_recv.recv(4096)
                due = True
            elif mask & selectors.EVENT_READ:
                self._on_readable(key.data)
            elif mask & selectors.EVENT_WRITE:
                self._send(key.data)
        now = time.monotonic()
        if self._take_arrivals(selector):
            due, last_pass = True, 0.0  # a new stream starts at once
        if due and now - last_pass >= FLUSH_SECONDS:
            last_pass = now
            try:
                due = self._pass(now)
            except Exception:  # the one writer: it must not die
                log.exception("stream writer pass failed; retrying")
                due = True
        self._heartbeats(now)
        return last_pass, due

    def _take_arrivals(self, selector: selectors.BaseSelector) -> bool:
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sub in arrivals:
            self._subscribers.add(sub)
            selector.register(sub.sock, selectors.EVENT_READ, sub)
        return bool(arrivals)

    def _pass(self, now: float) -> bool:
        """Queue and send each stream's new changes; True when some stream has more to catch
        up on (another pass is due without waiting for a change)."""
        more = False
        # Streams at the same position with the same filters (most of them: every stream that
        # keeps up, unfiltered) get the same bytes: made once per pass, not once per stream.
        made: dict[tuple[Position, Filters], tuple[Position, bytes, bool]] = {}
        for sub in list(self._subscribers):
            if len(sub.out) >= HIGH_WATER_BYTES:  # still: it takes nothing new
                assert sub.blocked_since is not None
                if now - sub.blocked_since > SLOW_CLIENT_SECONDS:
                    idle = now - sub.blocked_since
                    log.info("stream closed: its client read too little for %.0f s", idle)
                    self._drop(sub)
                else:
                    more = True  # passes go on until it catches up or is let go
                continue
            key = (sub.position, sub.filters)
            if key not in made:
                made[key] = self._next(sub.position, sub.filters)
            sub.position, text, behind = made[key]
            more = more or behind
            if text:
                sub.queue(text, now)
                self._send(sub)
                if len(sub.out) >= HIGH_WATER_BYTES:
                    sub.blocked_since = now
                    more = True
        return more

    def _next(self, position: Position, filters: Filters) -> tuple[Position, bytes, bool]:
        """The position after the changes there are for a stream at `position`, the bytes it
        is sent, and whether it is behind what the hub keeps (still catching up)."""
        items = self._hub.after(position)
        behind = items is None
        if items is None:
            items = feed.read_after(self._reader, self._hub.key, position, CATCH_UP_CHUNK)
            if not items:
                return self._hub.latest(), b"", True
        if not items:
            return position, b"", behind
        if filters.none:
            text = b"".join([i.sse for i in items])
        else:
            text = b"".join([i.sse for i in items if filters.match(i.change)])
        return items[-1].position, text, behind

    def _heartbeats(self, now: float) -> None:
        for sub in list(self._subscribers):
            if now - sub.last_queued >= HEARTBEAT_SECONDS:
                sub.queue(HEARTBEAT, now)
                self._send(sub)

    def _until_heartbeat(self, now: float) -> float:
        if not self._subscribers:
            return HEARTBEAT_SECONDS
        oldest = min(sub.last_queued for sub in self._subscribers)
        return max(0.0, oldest + HEARTBEAT_SECONDS - now)

    def _send(self, sub: Subscriber) -> None:
        try:
            sub.flush()
        except OSError:
            self._drop(sub)
            return
        waiting = bool(sub.out)
        if waiting != sub.waiting_to_write:  # epoll is told only when that changes
            sub.waiting_to_write = waiting
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if waiting else 0)
            assert self._selector is not None
            self._selector.modify(sub.sock, events, sub)

    def _on_readable(self, sub: Subscriber) -> None:
        """A stream's client sends nothing after its request: readable means closed (or reset)."""
        try:
            data = sub.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        if sub not in self._subscribers:
            return
        self._subscribers.discard(sub)
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sub.sock)
        sub.sock.close()
        self._hub.leave()
