"""The message contract between ingress and workers: one Redis Stream, one consumer group.

Each callback is one stream entry holding the raw request, so the ingress does no more work than
it must and nothing Twilio sent is lost. Entries are deleted once the transaction that stored them
commits, so the stream length is the backlog, which the ingress checks for backpressure.
"""

from __future__ import annotations

import hashlib
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_exceptions

if TYPE_CHECKING:
    import redis

# Short field names: at a million queued callbacks every byte of every entry counts.
F_BODY = b"b"  # raw form body (POST)
F_QUERY = b"q"  # raw query string
F_METHOD = b"m"  # present only for GET
F_TOKEN = b"t"  # I-Twilio-Idempotency-Token
F_RECEIVED = b"r"  # ingress clock, seconds since the epoch

# Append unless the backlog is full, in one round trip. Returns the entry id, or nil when full.
_ENQUEUE_LUA = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
"""


class BacklogFull(Exception):  # noqa: N818 - a condition, not a bug
    """The stream holds more unprocessed callbacks than the configured limit."""


class Enqueuer:
    """Appends raw callbacks to the stream with a backlog limit, one Redis round trip each.

    The ingress makes exactly one Redis call per request, so it drives redis-py's Connection
    itself: the client layer above it (pool checkout and release, retry wrapper, event hooks)
    cost twice the CPU of the round trip (docs/benchmarks-notes.md). The connections are still
    redis-py's, built from the client's settings: URL, auth, TLS, database and timeouts.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream_key: str,
        max_backlog: int,
        timeout: float | None = None,
    ) -> None:
        """`timeout`: the budget of one whole enqueue, connecting included (default: the
        client's socket timeout). Past it the enqueue raises redis's TimeoutError."""
        pool = client.connection_pool
        # A new connection's handshake costs round trips too, each allowed the socket timeout:
        # RESP2 needs no HELLO, and CLIENT SETINFO is only a label. AUTH and SELECT remain
        # when the URL asks for them.
        kwargs = {**pool.connection_kwargs, "protocol": 2, "driver_info": None}
        kwargs.pop("lib_name", None)
        kwargs.pop("lib_version", None)
        self._new_connection = partial(pool.connection_class, **kwargs)
        self._timeout = timeout if timeout is not None else kwargs.get("socket_timeout")
        # list.pop and list.append are atomic: threaded or green workers can share the list.
        self._idle: list[Any] = []
        self._sha = hashlib.sha1(_ENQUEUE_LUA.encode()).hexdigest()  # noqa: S324 - Redis's id
        self._key = stream_key
        self._max = max_backlog

    def enqueue(
        self, *, body: bytes, query: bytes, method: str, token: str, received: float
    ) -> bytes:
        """Returns the stream id. Raises BacklogFull, or redis errors when Redis did not accept."""
        args: list[bytes | str | int] = [self._max, F_BODY, body, F_RECEIVED, repr(received)]
        if query:
            args += [F_QUERY, query]
        if method != "POST":
            args += [F_METHOD, method]
        if token:
            args += [F_TOKEN, token]
        # One deadline for the whole enqueue: a slow Redis answering each of several round
        # trips just inside the socket timeout must still get the caller its 503 in time.
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        conn = self._checkout()
        try:
            try:
                entry_id = _call(conn, deadline, "EVALSHA", self._sha, 1, self._key, *args)
            except redis_exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                _call(conn, deadline, "SCRIPT", "LOAD", _ENQUEUE_LUA)
                entry_id = _call(conn, deadline, "EVALSHA", self._sha, 1, self._key, *args)
        finally:
            # redis-py disconnects on a network error; the next call connects afresh.
            self._idle.append(conn)
        if entry_id is None:
            raise BacklogFull(self._key)
        return entry_id

    def _checkout(self) -> Any:
        try:
            conn = self._idle.pop()
        except IndexError:
            return self._new_connection()  # connects on first use
        if conn.is_connected:
            try:
                # Readable while idle means Redis closed it (restart, idle timeout): as redis-py's
                # pool does on checkout, reconnect rather than fail this callback.
                stale = conn.can_read()
            except (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError, OSError):
                stale = True
            if stale:
                conn.disconnect()
        return conn


def _call(conn: Any, deadline: float | None, *command: Any) -> Any:
    if not conn.is_connected:
        conn.connect()  # within the connect timeout, plus AUTH and SELECT if configured
    read: dict[str, float] = {}
    if deadline is not None:
        read["timeout"] = deadline - time.monotonic()  # the read disconnects if it runs out
        if read["timeout"] <= 0:
            raise redis_exceptions.TimeoutError("Redis took the whole enqueue timeout")
    conn.send_packed_command(conn.pack_command(*command), check_health=False)
    return conn.read_response(**read)


def ensure_group(client: redis.Redis, stream_key: str, group: str) -> None:
    """Create the stream and consumer group if missing. Idempotent.

    The group starts at id 0 so callbacks accepted before any worker ever ran are still read.
    """
    import redis as redis_module

    try:
        client.xgroup_create(stream_key, group, id="0", mkstream=True)
    except redis_module.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# Atomic, so a consumer cannot read new entries between the check and the delete: deleting a
# consumer drops its pending entries, which would then never be delivered again.
_REMOVE_IDLE_CONSUMERS_LUA = """
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and f['pending'] == 0 and f['idle'] > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed
"""


def remove_idle_consumers(
    client: redis.Redis, stream_key: str, group: str, keep: str, idle_ms: int
) -> list[str]:
    """Forget consumers (dead workers' names) idle longer than `idle_ms` with nothing pending,
    except `keep`. Returns the names removed."""
    removed = client.eval(_REMOVE_IDLE_CONSUMERS_LUA, 1, stream_key, group, keep, idle_ms)
    return [n.decode() if isinstance(n, bytes) else n for n in removed]
