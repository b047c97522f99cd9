"""What a drainer has done, and the progress line that tells it while it runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

# The package's one logger (see workers/drain/entries.py).
log = logging.getLogger(__package__)


@dataclass
class Stats:
    stored: int = 0
    redelivered: int = 0
    dead: int = 0
    batches: int = 0
    claimed: int = 0


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
