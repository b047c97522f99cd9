"""Stream entries as a read returns them: parsed into callbacks or dead letters, and the span of
stream ids a read covered (one receipt each, see workers/store/receipts.py)."""

from __future__ import annotations

import logging

from shared.callback import Callback, MalformedCallback, from_entry
from workers.store import DeadEntry

# The package's one logger, named as before it was split: log filters and bench/drain.py's
# start check ("workers.drain: draining") read that name.
log = logging.getLogger(__package__)

Entries = list[tuple[bytes, dict[bytes, bytes]]]
Spans = list[tuple[str, str]]


def spans_of(entries: Entries) -> Spans:
    """The span of one read with ">": a contiguous run of the stream."""
    if not entries:
        return []
    return [(entries[0][0].decode("ascii"), entries[-1][0].decode("ascii"))]


def _describe_entry(entry: dict[bytes, bytes]) -> dict[str, str]:
    """The entry as JSON-safe text (PostgreSQL's JSONB refuses NUL characters)."""

    def text(b: bytes) -> str:
        return b.decode("utf-8", "replace").replace("\x00", "\\x00")

    return {text(k): text(v) for k, v in entry.items()}


def parse_entries(entries: Entries) -> tuple[list[Callback], list[DeadEntry]]:
    """The callbacks, and the entries that are not one, each with the reason."""
    callbacks: list[Callback] = []
    dead: list[DeadEntry] = []
    for raw_id, fields in entries:
        stream_id = raw_id.decode("ascii")
        try:
            callbacks.append(from_entry(stream_id, fields))
        except MalformedCallback as exc:
            log.error("dead-lettered stream entry %s: %s", stream_id, exc)
            dead.append(DeadEntry(stream_id, str(exc), _describe_entry(fields)))
    return callbacks, dead
