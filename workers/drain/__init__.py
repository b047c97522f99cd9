"""The stream drain: each worker process reads callbacks in batches, stores them, acknowledges.

At-least-once: an entry is acknowledged (XACK) and deleted (XDEL) only after the transaction that
stored it committed. Entries held by a worker that died stay pending in the consumer group and are
taken over (XAUTOCLAIM) by any live worker once idle for `claim_idle_seconds`. Storing is
idempotent (see workers.store), so a takeover never counts a callback twice.

`loop` is the Drainer; `consumer` its Redis side; `entries` parses what a read returns; `errors`
tells bad rows from an unavailable database; `housekeeping` and `stats` do the rest.
"""

from workers.drain.consumer import consumer_name, redis_client
from workers.drain.loop import Drainer
from workers.drain.stats import Stats

__all__ = ["Drainer", "Stats", "consumer_name", "redis_client"]
