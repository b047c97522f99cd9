"""Changes as the web side hands them out: each with its position and its SSE text made once,
however many open streams send it."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass

from shared.changes import FIELD, Change, Position, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Item:
    position: Position
    change: Change
    data: str  # the change's JSON document
    sse: bytes  # the event as a stream sends it: made once, sent by every open stream


def _item(entry_id: str, index: int, change: Change) -> Item:
    position = Position(entry_id, index)
    data = json.dumps(change.document(), separators=(",", ":"))
    return Item(position, change, data, f"id: {position}\ndata: {data}\n\n".encode())


def items_of(entry_id: bytes | str, fields: dict[bytes, bytes]) -> list[Item]:
    """One stream entry's changes; an entry that cannot be read is logged and yields none."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        changes = decode(fields[FIELD.encode()])
    except (KeyError, ValueError, TypeError) as exc:
        log.error("unreadable change-feed entry %s skipped (%s)", entry, exc)
        return []
    return [_item(entry, i, c) for i, c in enumerate(changes)]


@dataclass(frozen=True, slots=True)
class Filters:
    """A stream's optional filters; None matches everything."""

    sid: str | None = None
    to: str | None = None
    statuses: Collection[str] | None = None

    @property
    def none(self) -> bool:
        return self.sid is None and self.to is None and self.statuses is None

    def match(self, change: Change) -> bool:
        return (
            (self.sid is None or change.sid == self.sid)
            and (self.to is None or change.to == self.to)
            and (self.statuses is None or change.status in self.statuses)
        )
