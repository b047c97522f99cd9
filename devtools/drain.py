"""Drain in the calling thread until the stream is empty (tests and benchmarks)."""

from __future__ import annotations

from workers.drain import Drainer, Stats


def drain_until_empty(drainer: Drainer, idle_passes: int = 2) -> Stats:
    """Run passes until `idle_passes` in a row found nothing; returns the drainer's stats."""
    empty = 0
    while empty < idle_passes:
        empty = empty + 1 if drainer.step() == 0 else 0
    return drainer.stats
