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

from shared import ledger

if TYPE_CHECKING:
    import redis

# Short field names: at a million queued callbacks every byte of every entry counts.
F_BODY = b"b"  # raw form body (POST)
F_QUERY = b"q"  # raw query string
F_METHOD = b"m"  # present only for GET
F_TOKEN = b"t"  # I-Twilio-Idempotency-Token
F_RECEIVED = b"r"  # ingress clock, seconds since the epoch

# Append unless the backlog is full, and add the callback to the ledger (shared/ledger.py), in one
# round trip: the entry and its ledger sums are written together or not at all, and reach the AOF
# together. Returns the entry id, or nil when full. KEYS: the stream, the ledger cell. ARGV: the
# backlog limit, the ledger's time to live, the callback's three ledger sums (the ingress
# computes them: hashing and parsing in Lua cost Redis twice the CPU of the BITFIELD), then the
# entry's fields. An empty first sum: no ledger term.
_ENQUEUE_LUA = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 6))
if ARGV[3] ~= '' then
  local sums = redis.call('BITFIELD', KEYS[2], 'INCRBY', 'i64', '#0', 1,
    'INCRBY', 'i64', '#1', ARGV[3], 'INCRBY', 'i64', '#2', ARGV[4],
    'INCRBY', 'i64', '#3', ARGV[5])
  if sums[1] == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
end
return id
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
        ledger_retention_hours: int = 72,
    ) -> None:
        """`timeout`: the budget of one whole enqueue, connecting included (default: the
        client's socket timeout). Past it the enqueue raises redis's TimeoutError.
        `ledger_retention_hours`: how long a ledger bucket outlives its last callback."""
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
        self._ledger_ttl = ledger_retention_hours * 3600 + ledger.BUCKET_SECONDS
        # The current minute and its ledger keys, made once a minute rather than once a callback;
        # one tuple, so threads sharing the Enqueuer never pair a minute with another's keys.
        self._bucket: tuple[float, tuple[str, ...]] = (0.0, ())

    def enqueue(
        self,
        *,
        body: bytes,
        query: bytes,
        method: str,
        token: str,
        received: float,
        sid: str = "",
        status: str = "",
    ) -> bytes:
        """Returns the stream id. Raises BacklogFull, or redis errors when Redis did not accept.

        `sid` and `status`: the callback's MessageSid (valid) and MessageStatus, which the ledger
        counts; the ingress always passes them."""
        bucket = self._bucket
        if not bucket[0] <= received < bucket[0] + ledger.BUCKET_SECONDS:
            start = ledger.bucket_of(received)
            self._bucket = bucket = (start, ledger.cell_keys(self._key, start))
        if sid:
            cell, checksum, high, low = ledger.ingress_term(sid, status)
            term: tuple[str | int, ...] = (checksum, high, low)
        else:
            cell, term = 0, ("", "", "")
        cell_key = bucket[1][cell]
        args: list[bytes | str | int] = [self._max, self._ledger_ttl, *term,
                                         F_BODY, body, F_RECEIVED, repr(received)]  # fmt: skip
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
                entry_id = _call(
                    conn, deadline, "EVALSHA", self._sha, 2, self._key, cell_key, *args
                )
            except redis_exceptions.NoScriptError:  # Redis restarted: its script cache is empty
                _call(conn, deadline, "SCRIPT", "LOAD", _ENQUEUE_LUA)
                entry_id = _call(
                    conn, deadline, "EVALSHA", self._sha, 2, self._key, cell_key, *args
                )
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
