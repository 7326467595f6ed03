"""Audio cache: Redis when configured (shared across replicas), an in-process LRU otherwise.

Keys are built by the synthesis service as ``<prefix>:<tenant>:<voice>:<digest>`` so that one
voice's (or one tenant's) entries can be dropped with `delete_prefix` when the voice changes.
Both back ends bound entries by TTL and total size; values are the encoded audio bytes plus a small
JSON header (content type, duration, marks) packed by `pack_entry`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from control_plane.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "tts:audio"


@dataclass(frozen=True)
class CacheEntry:
    audio: bytes
    meta: dict[str, Any] = field(default_factory=dict)


def pack_entry(entry: CacheEntry) -> bytes:
    header = json.dumps(entry.meta, separators=(",", ":")).encode()
    return struct.pack("<I", len(header)) + header + entry.audio


def unpack_entry(blob: bytes) -> CacheEntry:
    (n,) = struct.unpack_from("<I", blob, 0)
    return CacheEntry(audio=blob[4 + n :], meta=json.loads(blob[4 : 4 + n]))


class AudioCache(Protocol):
    async def get(self, key: str) -> CacheEntry | None: ...

    async def set(self, key: str, entry: CacheEntry) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...


class MemoryAudioCache:
    """LRU bounded by total bytes, with a TTL checked on read."""

    def __init__(self, max_bytes: int, ttl_s: float, max_entry_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.max_entry_bytes = max_entry_bytes
        self._items: OrderedDict[str, tuple[float, CacheEntry, int]] = OrderedDict()
        self._bytes = 0
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> CacheEntry | None:
        async with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, entry, _ = item
            if expires < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return entry

    async def set(self, key: str, entry: CacheEntry) -> None:
        size = len(entry.audio) + 256
        if size > self.max_entry_bytes or size > self.max_bytes:
            return
        async with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic() + self.ttl_s, entry, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                self._drop(next(iter(self._items)))

    async def delete_prefix(self, prefix: str) -> int:
        async with self._lock:
            doomed = [k for k in self._items if k.startswith(prefix)]
            for k in doomed:
                self._drop(k)
            return len(doomed)

    def _drop(self, key: str) -> None:
        _, _, size = self._items.pop(key)
        self._bytes -= size

    @property
    def size_bytes(self) -> int:
        return self._bytes


class RedisAudioCache:
    """Entries as Redis strings with a TTL; the size cap is per entry (Redis' maxmemory policy bounds the total)."""

    def __init__(self, redis: Any, ttl_s: float, max_entry_bytes: int, metrics: Any | None = None,
                 usable: Callable[[], bool] | None = None) -> None:
        self.redis = redis
        self.usable = usable or (lambda: True)  # False while Redis is known to be down: skip, do not wait
        self.ttl_s = ttl_s
        self.max_entry_bytes = max_entry_bytes
        self.metrics = metrics

    def _failed(self, operation: str, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.redis_errors.labels(operation=operation).inc()
        log.warning("audio cache %s failed: %s", operation.removeprefix("cache_"), type(exc).__name__)

    async def get(self, key: str) -> CacheEntry | None:
        if not self.usable():
            return None
        try:
            blob = await self.redis.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache outage must not fail synthesis
            self._failed("cache_get", exc)
            return None
        return unpack_entry(blob) if blob else None

    async def set(self, key: str, entry: CacheEntry) -> None:
        blob = pack_entry(entry)
        if len(blob) > self.max_entry_bytes or not self.usable():
            return
        try:
            await self.redis.set(key, blob, ex=max(1, int(self.ttl_s)))
        except Exception as exc:  # noqa: BLE001
            self._failed("cache_set", exc)

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        batch: list[Any] = []
        async for key in self.redis.scan_iter(match=_escape_glob(prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += await self.redis.delete(*batch)
                batch.clear()
        if batch:
            removed += await self.redis.delete(*batch)
        return removed


def _escape_glob(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


def voice_prefix(tenant_id: str, voice_id: str) -> str:
    return f"{KEY_PREFIX}:{tenant_id}:{voice_id}:"


def tenant_prefix(tenant_id: str) -> str:
    return f"{KEY_PREFIX}:{tenant_id}:"


def build_cache(settings: Settings, redis: Any | None, metrics: Any | None = None,
                redis_usable: Callable[[], bool] | None = None) -> AudioCache:
    ttl = float(settings.audio_cache_ttl_s)
    max_bytes = int(settings.audio_cache_max_bytes)
    max_entry = int(settings.audio_cache_max_entry_bytes)
    if redis is not None:
        return RedisAudioCache(redis, ttl_s=ttl, max_entry_bytes=max_entry, metrics=metrics, usable=redis_usable)
    return MemoryAudioCache(max_bytes=max_bytes, ttl_s=ttl, max_entry_bytes=max_entry)
