from __future__ import annotations

import fakeredis

from workers.actions.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_beyond_the_rate_wait_for_the_next_second():
    clock = Clock()
    client = fakeredis.FakeRedis()
    limiter = RateLimiter(client, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [1.0]


def test_two_processes_share_one_budget():
    clock = Clock()
    client = fakeredis.FakeRedis()
    a = RateLimiter(client, 2, clock=clock, sleep=clock.sleep)
    b = RateLimiter(client, 2, clock=clock, sleep=clock.sleep)
    a.acquire()
    b.acquire()
    b.acquire()
    assert clock.slept == [1.0]


def test_a_rate_below_one_spreads_calls_over_a_longer_window():
    clock = Clock()
    limiter = RateLimiter(fakeredis.FakeRedis(), 0.5, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    assert clock.slept == [2.0]
