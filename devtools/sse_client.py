"""A minimal Server-Sent Events client for tests and benchmarks: one socket, HTTP/1.0 (so the
body is the raw event stream, unchunked), events parsed in a thread into a queue."""

from __future__ import annotations

import codecs
import contextlib
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Event:
    id: str | None
    event: str
    data: str
    received: float  # time.time() when its last byte was read

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseStream:
    """GET `url` with `headers`; `status` and `head` once connected. With `parse` False the
    body is read and dropped (a load generator's many streams), `bytes_read` counted."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    parse: bool = True
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), self.timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.0", f"Host: {parts.netloc}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1]) if self.head else 0
        self.events: queue.Queue[Event] = queue.Queue()
        self.comments: list[str] = []
        self.bytes_read = len(rest)
        self.body = rest if self.status != 200 else b""
        self.closed = threading.Event()
        # A read can end inside a UTF-8 character: decode across reads.
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = self._decoder.decode(rest)
        if self.status == 200:
            self.sock.settimeout(None)
            self._take()
            threading.Thread(target=self._read, daemon=True).start()
        else:  # an error answer: read it whole (HTTP/1.0: the server closes after it)
            while chunk := self.sock.recv(65536):
                self.body += chunk
            self.close()

    def _read(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                if self.parse:
                    self._pending += self._decoder.decode(chunk)
                    self._take()
        except OSError:
            pass
        self.closed.set()

    def _take(self) -> None:
        now = time.time()
        # One split per read, not one per event: a read holds hundreds of events under load,
        # and splitting off one at a time copies the rest each time.
        *blocks, self._pending = self._pending.split("\n\n")
        for block in blocks:
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            if "data" in fields:
                self.events.put(Event(fields.get("id"), fields.get("event", "message"),
                                      fields["data"], now))  # fmt: skip

    def next(self, timeout: float = 10.0) -> Event:
        """The next event; raises queue.Empty after `timeout`."""
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
