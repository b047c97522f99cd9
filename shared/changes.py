"""The change feed's contract: what the workers publish and the web processes serve.

After a batch's transaction commits, its worker appends one entry to a Redis Stream
(`CHANGES_STREAM_KEY`) holding every audit event that batch stored for the first time (a new
(message, status) pair: a new current status, or a later-ranked or conflicting one). One entry
per batch, not per change: at full drain speed an entry per change cost Redis more than the
drain's own commands. Entries are trimmed by age (MINID, by Redis's clock) so that at least
`CHANGES_RETENTION_SECONDS` are kept.

A change's position is its entry id and its index in the entry, written `<entry id>.<index>`;
a bare `<entry id>` stands for "after the whole entry". Redis gives entry ids in the order the
appends arrive, whichever worker sends them, so a reader that asks for "after my position" never
skips an entry appended later, and positions never repeat.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.statuses import Ranks, rank

FIELD = "c"

# Appends one entry and trims, in one round trip, entries older than ARGV[1] ms by Redis's own
# clock (a worker's clock may be off). `~` trims whole internal nodes only: never more than asked.
PUBLISH_SCRIPT = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minid = string.format('%.0f', now_ms - tonumber(ARGV[1]))
return redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', ARGV[2], ARGV[3])
"""

# A change as it travels: sid, status, error_code, error_message, to, from, received (epoch s).
WireChange = tuple[str, str, int | None, str | None, str | None, str | None, float]

_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def encode(changes: Sequence[WireChange]) -> str:
    """Positional lists, not objects: the worker encodes every change of every batch."""
    return json.dumps(changes, separators=(",", ":"))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True, slots=True)
class Change:
    sid: str
    status: str
    error_code: int | None
    error_message: str | None
    to: str | None
    from_: str | None
    at: float  # when the ingress acknowledged the callback, epoch seconds

    @property
    def final(self) -> bool:
        return rank(self.status) == Ranks.FINAL

    def document(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "to": self.to,
            "from": self.from_,
            "at": iso(self.at),
            "final": self.final,
        }


def decode(payload: bytes | str) -> list[Change]:
    return [Change(*item) for item in json.loads(payload)]


def entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a comparable pair; raises ValueError if it is not `<ms>-<seq>`."""
    match = _ENTRY_ID.match(entry_id)
    if match is None:
        raise ValueError(f"not a stream entry id: {entry_id!r}")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, slots=True)
class Position:
    """Just after a change (`index`), or after a whole entry (`index` None)."""

    entry_id: str
    index: int | None = None

    @property
    def key(self) -> tuple[int, int]:
        return entry_key(self.entry_id)

    def __str__(self) -> str:
        return self.entry_id if self.index is None else f"{self.entry_id}.{self.index}"

    @classmethod
    def parse(cls, raw: str) -> Position:
        """`<ms>-<seq>` or `<ms>-<seq>.<index>`; raises ValueError otherwise."""
        entry_id, dot, index = raw.strip().partition(".")
        entry_key(entry_id)
        if not dot:
            return cls(entry_id)
        if not index.isdigit() or len(index) > 9:
            raise ValueError(f"not a change position: {raw!r}")
        return cls(entry_id, int(index))

    def precedes(self, entry_id: str, index: int) -> bool:
        """Does the change at (entry_id, index) come after this position?"""
        key = entry_key(entry_id)
        if key != self.key:
            return key > self.key
        return self.index is not None and index > self.index


START = Position("0-0")  # before every entry: Redis never gives the id 0-0
