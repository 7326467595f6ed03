"""Audio cache: LRU size cap, TTL, prefix invalidation, and the entry packing Redis stores."""

from __future__ import annotations

import asyncio
import time

from control_plane.adapters.cache import (
    CacheEntry,
    MemoryAudioCache,
    build_cache,
    pack_entry,
    tenant_prefix,
    unpack_entry,
    voice_prefix,
)
from control_plane.settings import Settings


async def test_get_set_and_lru_eviction_by_size():
    cache = MemoryAudioCache(max_bytes=3 * (1000 + 256), ttl_s=60, max_entry_bytes=10_000)
    for k in "abc":
        await cache.set(k, CacheEntry(b"x" * 1000, {"k": k}))
    assert (await cache.get("a")).meta == {"k": "a"}  # a is now the most recently used
    await cache.set("d", CacheEntry(b"y" * 1000))
    assert await cache.get("b") is None  # the least recently used went
    assert await cache.get("a") is not None and await cache.get("d") is not None
    assert cache.size_bytes <= cache.max_bytes
    await cache.set("huge", CacheEntry(b"z" * 20_000))  # over the per-entry cap: not stored
    assert await cache.get("huge") is None


async def test_ttl_expires_entries():
    # A TTL a busy machine cannot outrun between set and get; then a wait until it has passed.
    cache = MemoryAudioCache(max_bytes=10**6, ttl_s=1.0, max_entry_bytes=10**6)
    stored = time.monotonic()
    await cache.set("k", CacheEntry(b"audio"))
    assert await cache.get("k") is not None
    await asyncio.sleep(max(0.0, stored + 1.0 - time.monotonic()) + 0.05)
    assert await cache.get("k") is None


async def test_delete_prefix_drops_one_voice_only():
    cache = build_cache(Settings(), None)
    await cache.set(voice_prefix("t1", "v1") + "h1", CacheEntry(b"1"))
    await cache.set(voice_prefix("t1", "v1") + "h2", CacheEntry(b"2"))
    await cache.set(voice_prefix("t1", "v2") + "h1", CacheEntry(b"3"))
    await cache.set(voice_prefix("t2", "v1") + "h1", CacheEntry(b"4"))
    assert await cache.delete_prefix(voice_prefix("t1", "v1")) == 2
    assert await cache.get(voice_prefix("t1", "v2") + "h1") is not None
    assert await cache.get(voice_prefix("t2", "v1") + "h1") is not None
    assert await cache.delete_prefix(tenant_prefix("t1")) == 1


def test_entry_packing_round_trip():
    entry = CacheEntry(b"\x00\x01audio", {"content_type": "audio/wav", "marks": [["m", 0.5]]})
    assert unpack_entry(pack_entry(entry)) == entry
