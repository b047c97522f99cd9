"""The workers' counters, kept in Redis for the ingress's `GET /metrics` to export.

Workers run anywhere (a Heroku worker dyno has no port anyone can scrape), so instead of serving
metrics of their own they add what they did to one Redis hash, in the same round trip as the
acknowledgement that ends a batch; the web process that answers a scrape reads the hash and
exports it. The totals are fleet-wide and survive worker restarts. This module is the contract
between the two sides: the families, how a labelled value is spelled as a hash field, the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Family:
    """One counter family as exported: `statuspipe_<name>_total{labels}`."""

    name: str
    doc: str
    labels: tuple[str, ...] = ()

    def field(self, *values: str) -> str:
        """The hash field of one labelled value; `|` never occurs in a kind or outcome name."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {values}")
        return "|".join((self.name, *values))


STORED = Family("callbacks_stored", "Callbacks stored for the first time, each counted once.")
REDELIVERED = Family(
    "callbacks_redelivered",
    "Stream entries read again after their callback was stored (a worker died between its"
    " commit and its acknowledgement); they changed nothing.",
)
DUPLICATES = Family(
    "callbacks_duplicate",
    "Callbacks stored that repeated a (message, status) already recorded: Twilio sent the same"
    " status more than once (counted in the audit row's duplicate_count).",
)
CLAIMED = Family("callbacks_claimed", "Stream entries taken over from a silent worker.")
DEAD_LETTERED = Family(
    "dead_letters", "Stream entries set aside in dead_letters instead of being stored."
)
BATCHES = Family("drain_batches", "Batches the drain committed and acknowledged.")
ACTIONS = Family(
    "actions",
    "Actions carried out to the end, by kind (retry, alert, contact_update) and outcome.",
    ("kind", "outcome"),
)

FAMILIES = (STORED, DUPLICATES, REDELIVERED, CLAIMED, DEAD_LETTERED, BATCHES, ACTIONS)
_BY_NAME = {f.name: f for f in FAMILIES}


def key(stream_key: str) -> str:
    """Beside the stream it counts, so two deployments sharing a Redis keep apart."""
    return f"{stream_key}:worker-counters"


def add(pipe: Any, stream_key: str, counts: Mapping[str, int]) -> None:
    """Queue HINCRBYs on `pipe` (a pipeline, or a client) for the non-zero counts."""
    name = key(stream_key)
    for field, n in counts.items():
        if n:
            pipe.hincrby(name, field, n)


def read(client: redis.Redis, stream_key: str) -> dict[Family, dict[tuple[str, ...], int]]:
    """Every family (empty when nothing was counted yet) with its values by label values.
    Fields of families this version does not know (a newer worker's) are left out."""
    out: dict[Family, dict[tuple[str, ...], int]] = {f: {} for f in FAMILIES}
    for raw_field, raw_value in client.hgetall(key(stream_key)).items():
        name, *values = raw_field.decode().split("|")
        family = _BY_NAME.get(name)
        if family is not None and len(values) == len(family.labels):
            out[family][tuple(values)] = int(raw_value)
    return out
