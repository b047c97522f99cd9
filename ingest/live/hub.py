"""One reader of the change feed per web process, shared by all of the process's open streams.

A thread follows the Redis stream with a blocking XREAD, keeps the latest entries in memory and
wakes the stream writer (writer.py), which takes for each stream what is newer than its
position. N open streams cost one Redis reader and one JSON encoding per change, not N. A
stream behind what the hub keeps (a resume with Last-Event-ID, or one that fell behind) catches
up from Redis first (feed.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import redis

from ingest.live.feed import end
from ingest.live.items import Item, items_of
from ingest.live.priority import yield_cpu_to_callbacks
from shared.changes import START, Position, entry_key

log = logging.getLogger(__name__)

BLOCK_MS = 5000
ENTRIES_PER_READ = 500  # entries: a drain at full speed appends a few hundred a second
# At most this often under load: the stream writer passes every FLUSH_SECONDS (writer.py), so
# reading once per drain batch only cost more Redis commands: at 1,000 callbacks/s the 4 web
# processes' change-feed threads spent about 35 us of CPU per callback, mostly in redis-py, and
# the streams' whole cost to the web fell from about 108 to about 70 us per callback with this
# limit (python -m bench.live). The first change after a quiet spell is still read at once:
# the wait follows a read that brought changes.
READ_EVERY_SECONDS = 0.1
KEEP_ENTRIES = 256  # about a quarter second at full drain speed, minutes at light load
MAX_BACKOFF_SECONDS = 10.0


class Hub:
    def __init__(self, connect: Callable[[], redis.Redis], key: str, max_streams: int) -> None:
        self._connect = connect
        self.key = key
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._entries: deque[tuple[tuple[int, int], list[Item]]] = deque()
        self._floor = START  # every entry after it is in _entries
        self._last = START
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self.streams = 0

    # --- subscribers ------------------------------------------------------------------------

    def join(self) -> bool:
        """Count one more open stream; False when the process holds its maximum already."""
        with self._lock:
            if self.streams >= self.max_streams:
                return False
            self.streams += 1
            self._start()
            return True

    def leave(self) -> None:
        with self._lock:
            self.streams -= 1

    def latest(self) -> Position:
        """After the newest change this process knows of: where a new stream starts."""
        with self._lock:
            self._start()
            return self._last

    def after(self, position: Position) -> list[Item] | None:
        """The kept changes after `position`; None when the hub does not hold everything after
        it (the caller reads Redis)."""
        with self._lock:
            floor = self._floor.key
            key = position.key
            if key < floor or (key == floor and position.index is not None):
                return None
            out: list[list[Item]] = []
            # Newest first: a stream that keeps up only looks at the last entry or two.
            for entry_key_, items in reversed(self._entries):
                if entry_key_ < key:
                    break
                if entry_key_ == key:
                    if position.index is not None:
                        out.append(items[position.index + 1 :])
                    break
                out.append(items)
            return [item for items in reversed(out) for item in items]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the reader thread) after each read that brought changes."""
        with self._lock:
            self._listeners.append(listener)

    # --- the reader thread ------------------------------------------------------------------

    def _start(self) -> None:
        """With the lock held: start following the stream from its current end."""
        if self._thread is not None and self._thread.is_alive():
            return
        client = self._connect()
        self._last = self._floor = end(client, self.key)
        self._entries.clear()
        self._thread = threading.Thread(
            target=self._follow, args=(client,), name="change-feed", daemon=True
        )
        self._thread.start()

    def _follow(self, client: redis.Redis) -> None:
        yield_cpu_to_callbacks()
        backoff = 0.5
        pause = threading.Event()  # never set: a wait that does not spin
        read_at = 0.0
        while True:
            since = time.monotonic() - read_at
            if since < READ_EVERY_SECONDS:
                pause.wait(READ_EVERY_SECONDS - since)
            try:
                reply = client.xread(
                    {self.key: self._last.entry_id}, count=ENTRIES_PER_READ, block=BLOCK_MS
                )
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - the only reader: it must not die
                log.warning("change feed unreadable (%s); retrying in %.1fs", exc, backoff)
                pause.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if not reply:
                continue
            entries = reply[0][1]
            # A full read: more are waiting, read again at once.
            read_at = 0.0 if len(entries) >= ENTRIES_PER_READ else time.monotonic()
            with self._lock:
                for entry_id, fields in entries:
                    items = items_of(entry_id, fields)
                    position = Position(entry_id.decode())
                    self._entries.append((entry_key(position.entry_id), items))
                    self._last = position
                while len(self._entries) > KEEP_ENTRIES:
                    dropped, _ = self._entries.popleft()
                    self._floor = Position(f"{dropped[0]}-{dropped[1]}")
                listeners = list(self._listeners)
            for listener in listeners:
                listener()
