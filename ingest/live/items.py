"""Changes as the web side hands them out: each with its position and its SSE text made once,
however many open streams send it."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass

from shared.changes import FIELD, Change, Position, decode, iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Item:
    position: Position
    change: Change
    sse: bytes  # the event as a stream sends it: made once, sent by every open stream


# json.dumps's own string encoder (ensure_ascii): the event text below is byte for byte what
# json.dumps(change.document(), separators=(",", ":")) gives (tests/unit/ingest/
# test_live_items.py), at 60% of its cost. Every web process renders every change, and the hub
# thread that does it takes the GIL from the process's callbacks (bench/live.py).
_string = json.encoder.encode_basestring_ascii


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def event_text(position: Position, change: Change) -> bytes:
    code = "null" if change.error_code is None else str(int(change.error_code))
    return (
        f"id: {position}\ndata: "
        f'{{"sid":{_string(change.sid)},"status":{_string(change.status)},"error_code":{code},'
        f'"error_message":{_text(change.error_message)},"to":{_text(change.to)},'
        f'"from":{_text(change.from_)},"at":"{iso(change.at)}",'
        f'"final":{"true" if change.final else "false"}}}\n\n'
    ).encode()


def items_of(entry_id: bytes | str, fields: dict[bytes, bytes]) -> list[Item]:
    """One stream entry's changes; an entry that cannot be read is logged and yields none."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    items = []
    try:
        for i, change in enumerate(decode(fields[FIELD.encode()])):
            position = Position(entry, i)
            items.append(Item(position, change, event_text(position, change)))
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        log.error("unreadable change-feed entry %s skipped (%s)", entry, exc)
        return []
    return items


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
