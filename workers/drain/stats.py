"""What a drainer has done: the progress line that tells it while it runs, and what one batch
adds to the fleet's counters in Redis (exported by the ingress's /metrics)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared import worker_counters as wc
from workers.store import BatchResult

# The package's one logger (see workers/drain/entries.py).
log = logging.getLogger(__package__)


@dataclass
class Stats:
    stored: int = 0
    redelivered: int = 0
    dead: int = 0
    batches: int = 0
    claimed: int = 0


def counts(result: BatchResult, claimed: int) -> dict[str, int]:
    """One stored batch as increments of the workers' counters (shared/worker_counters.py)."""
    return {
        wc.STORED.field(): result.stored,
        # Each new (message, status) audit row is one callback; the rest repeated one.
        wc.DUPLICATES.field(): result.stored - len(result.changes),
        wc.REDELIVERED.field(): result.redelivered,
        wc.DEAD_LETTERED.field(): result.dead,
        wc.CLAIMED.field(): claimed,
        wc.BATCHES.field(): 1,
    }


class Progress:
    """Tells the rate since it last spoke and what still waits in the stream, so the logs alone
    tell whether the workers keep up."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self._mark = (time.monotonic(), 0)  # when and at what count progress was last told

    def tell(self, backlog: Callable[[], str]) -> None:
        """One line; silent while nothing was stored since the last one."""
        now = time.monotonic()
        since, stored_then = self._mark
        stored = self.stats.stored - stored_then
        self._mark = (now, self.stats.stored)
        if not stored:
            return
        log.info(
            "stored %d callbacks in the last %.0fs (%.0f/s); backlog %s in the stream; since the "
            "start: %d stored in %d batches, %d redelivered, %d claimed, %d dead-lettered",
            stored,
            now - since,
            stored / max(now - since, 1e-9),
            backlog(),
            self.stats.stored,
            self.stats.batches,
            self.stats.redelivered,
            self.stats.claimed,
            self.stats.dead,
        )
