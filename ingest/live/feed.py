"""Reading the change feed from Redis: the changes after a position, and whether the feed still
holds everything after it (entries are trimmed by age)."""

from __future__ import annotations

import redis

from ingest.live.items import Item, items_of
from shared.changes import START, Position, entry_key

ENTRIES_PER_READ = 50


def read_after(client: redis.Redis, key: str, position: Position, limit: int) -> list[Item]:
    """Up to `limit` changes after `position`, oldest first."""
    items: list[Item] = []
    if position.index is not None:
        for entry_id, fields in client.xrange(key, position.entry_id, position.entry_id):
            items += items_of(entry_id, fields)[position.index + 1 :]
    start = position.entry_id
    while len(items) < limit:
        # "(" excludes the start: ids are unique and only grow, so nothing is read twice.
        entries = client.xrange(key, f"({start}", "+", count=ENTRIES_PER_READ)
        if not entries:
            break
        for entry_id, fields in entries:
            items += items_of(entry_id, fields)
        start = entries[-1][0].decode()
    return items[:limit]


def _info(client: redis.Redis, key: str) -> dict[str, object] | None:
    try:
        return client.xinfo_stream(key)  # type: ignore[no-any-return]
    except redis.ResponseError:  # no such key: nothing was ever published (or kept)
        return None


def _id(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode()
    return value if isinstance(value, str) else None


def trimmed_past(client: redis.Redis, key: str, position: Position) -> bool:
    """Were changes after `position` trimmed away? Entries only ever leave by trimming, oldest
    first, so that is: was an entry after it deleted. Redis 7 reports the highest deleted id;
    older ones do not, and are taken at their word (False)."""
    if position == START:
        return False
    info = _info(client, key)
    deleted = _id(info.get("max-deleted-entry-id")) if info else None
    if deleted is None or deleted == "0-0":
        return False
    gone = entry_key(deleted)
    return position.key < gone or (position.key == gone and position.index is not None)


def end(client: redis.Redis, key: str) -> Position:
    """After the last change published (kept or not): where a new follower starts."""
    info = _info(client, key)
    last = _id(info.get("last-generated-id")) if info else None
    return Position(last) if last else START
