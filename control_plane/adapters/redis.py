"""The one Redis connection of an app (limits, stream slots, character quota, audio cache)."""

from __future__ import annotations

import redis.asyncio as aioredis

from control_plane.settings import Settings


def connect(settings: Settings) -> aioredis.Redis | None:
    """A client for REDIS_URL, or None for the embedded (in-process) mode."""
    if not settings.redis_url.strip():
        return None
    return aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                   health_check_interval=30)


def limits_uri(redis_url: str) -> str:
    """REDIS_URL in the `limits` library's spelling of its asyncio Redis storage."""
    scheme, rest = redis_url.split("://", 1)
    return f"async+{scheme}://{rest}"
