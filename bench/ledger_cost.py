"""What the ledger (shared/ledger.py) adds to one enqueue: `python -m bench.ledger_cost [N] [ROUNDS]`.

The ingress's Enqueuer against the bench Redis (BENCH_REDIS_URL), with the ledger term (as the
ingress calls it) and without one (no sid: the script skips the ledger), alternating, ROUNDS
times N callbacks each. Per enqueue: this process's CPU (hashing, packing, the round trip's
system calls), Redis's CPU (INFO cpu: the script and the network I/O) and the script's own time
(INFO commandstats). The minimum over the rounds is the least disturbed by other load on the
machine; the median is shown beside it.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import redis

from bench import env
from shared.stream import Enqueuer

STREAM = "bench:ledger-cost"
BODY = (
    b"SmsSid=SMx&SmsStatus=delivered&MessageStatus=delivered&To=%2B15558675310&MessageSid=SM"
    + b"a" * 32
    + b"&AccountSid=AC"
    + b"b" * 32
    + b"&From=%2B15017250604&ApiVersion=2010-04-01"
)


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def _round(client: redis.Redis, with_ledger: bool, n: int) -> tuple[float, float, float]:
    enqueuer = Enqueuer(client, STREAM, 10**9, 1.0)
    sids = [f"SM{random.getrandbits(128):032x}" for _ in range(n)]
    pairs = [{"sid": s, "status": "delivered"} if with_ledger else {} for s in sids]
    enqueuer.enqueue(body=BODY, query=b"", method="POST", token="t", received=time.time())
    client.config_resetstat()
    redis_before, cpu_before = _redis_cpu(client), time.thread_time()
    for pair in pairs:
        enqueuer.enqueue(
            body=BODY, query=b"", method="POST", token="idem", received=time.time(), **pair
        )
    cpu, redis_cpu = time.thread_time() - cpu_before, _redis_cpu(client) - redis_before
    script = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
    client.delete(STREAM, *client.keys(f"{STREAM}:ledger:*"))
    return cpu / n * 1e6, redis_cpu / n * 1e6, script


def _rounds(n: int, rounds: int) -> dict[bool, list[tuple[float, float, float]]]:
    client = env.fresh_redis()
    results: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for i in range(rounds):
        for with_ledger in (True, False) if i % 2 else (False, True):
            results[with_ledger].append(_round(client, with_ledger, n))
    return results


def extra_cpu_us(n: int = 20_000, rounds: int = 6) -> tuple[float, float]:
    """What the ledger adds to one enqueue, µs of CPU: (the ingress's, Redis's); minimums
    over the rounds, with minus without (make bench's ledger check)."""
    results = _rounds(n, rounds)
    return tuple(  # type: ignore[return-value]
        min(r[i] for r in results[True]) - min(r[i] for r in results[False]) for i in (0, 1)
    )


def main(n: int = 20_000, rounds: int = 10) -> None:
    results = _rounds(n, rounds)
    print(f"{n:,} enqueues x {rounds} rounds each, alternating; µs per enqueue, min (median)")
    names = ("this process's CPU", "Redis CPU", "script time (commandstats)")
    for with_ledger, label in ((False, "without ledger"), (True, "with ledger")):
        cols = []
        for i, name in enumerate(names):
            xs = [r[i] for r in results[with_ledger]]
            cols.append(f"{name} {min(xs):.1f} ({statistics.median(xs):.1f})")
        print(f"  {label:15s} " + ", ".join(cols))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
