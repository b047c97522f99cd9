"""What the live endpoints keep per web process: the hub every open stream shares, the thread
that writes them, and a Redis client for reading the feed (its own: the ingress's client gives
Redis half a second)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ingest.live.hub import BLOCK_MS, Hub
from ingest.live.writer import StreamWriter
from shared.config import Settings

READ_TIMEOUT_SECONDS = 5.0


def _client(settings: Settings, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=READ_TIMEOUT_SECONDS
    )


@dataclass
class LiveContext:
    settings: Settings
    hub: Hub
    reader: redis.Redis
    writer: StreamWriter

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis | None = None) -> LiveContext:
        """`client`: one client for everything (tests with fakeredis); default: real ones."""
        if client is not None:
            hub = Hub(lambda: client, settings.changes_stream_key, settings.stream_max_per_process)
            return cls(settings, hub, client, StreamWriter(hub, client))
        follow_timeout = BLOCK_MS / 1000 + READ_TIMEOUT_SECONDS
        hub = Hub(
            lambda: _client(settings, follow_timeout),
            settings.changes_stream_key,
            settings.stream_max_per_process,
        )
        reader = _client(settings, READ_TIMEOUT_SECONDS)
        return cls(settings, hub, reader, StreamWriter(hub, reader))
