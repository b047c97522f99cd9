"""TWILIO_MAX_RPS: REST calls per second to Twilio, counted across every actions worker.

A fixed one-second window per key in Redis (INCR + EXPIRE in one round trip). Coarse, but it
holds the fleet to the account's limit without coordination between workers; Twilio's own 429
is still handled by the caller's backoff when several applications share one account.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis

KEY_PREFIX = "statuspipe:twilio_calls:"


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        per_second: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = client
        # Fractional rates (0.5/s) become one call per window of 1/rate seconds.
        self.window = max(1.0, 1.0 / per_second)
        self.per_window = max(1, math.floor(per_second * self.window))
        self.clock = clock
        self.sleep = sleep

    def acquire(self) -> None:
        """Block until this process may make one call."""
        while True:
            now = self.clock()
            slot = int(now // self.window)
            key = f"{KEY_PREFIX}{self.window:g}:{slot}"
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, math.ceil(self.window) + 1)
            count, _ = pipe.execute()
            if count <= self.per_window:
                return
            self.sleep(max((slot + 1) * self.window - now, 0.001))
