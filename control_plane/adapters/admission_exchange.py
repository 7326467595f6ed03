"""Admission state shared between control-plane replicas through Redis (what is shared and how it is merged:
services/admission_peers.py).

One background task per replica, never on a request's path, every ADMISSION_SHARE_INTERVAL_S:

1. writes this replica's snapshot (JSON) to `tts:admission:replica:<id>` with a TTL of TTL_INTERVALS intervals,
   and its id into the index `tts:admission:replicas`, a sorted set scored by Redis's own clock (no clock skew
   between pods) and pruned of ids not renewed for INDEX_KEEP_S. The index only lists; the snapshot's TTL says
   who is alive: a replica that dies or hangs stops renewing it, and its load drops out of every other view
   within TTL_INTERVALS intervals;
2. reads the listed replicas' snapshots (one MGET) and merges them into the view admission reads.

Redis failing or slow (an exchange longer than the TTL counts as failed): the view is emptied and this replica
decides alone, as it would without Redis; one warning per outage, `tts_admission_sharing_up` 0,
`tts_redis_errors_total{operation="admission_exchange"}` counting. The next interval tries again, and recovery
is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from control_plane.services.admission_peers import PeerLoads, snapshot

if TYPE_CHECKING:
    from control_plane.metrics import Metrics
    from control_plane.services.admission import Admission

TTL_INTERVALS = 5
MIN_TTL_S = 0.5
INDEX_KEEP_S = 60
PREFIX = "tts:admission"
INDEX = f"{PREFIX}:replicas"
log = logging.getLogger(__name__)

# KEYS: own snapshot key, index. ARGV: snapshot, TTL ms, replica id, seconds an index entry is kept.
_PUBLISH = """
local now = tonumber(redis.call('TIME')[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[2], ARGV[4])
return redis.call('ZRANGE', KEYS[2], 0, -1)
"""


def replica_id() -> str:
    """A name for this process, unique across restarts (the host name says which pod it is)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AdmissionExchange:
    def __init__(self, redis: Any, admission: Admission, interval_s: float, metrics: Metrics | None = None,
                 replica: str | None = None) -> None:
        self.redis = redis
        self.admission = admission
        self.interval_s = interval_s
        self.ttl_s = max(MIN_TTL_S, TTL_INTERVALS * interval_s)
        self.metrics = metrics
        self.replica = replica or replica_id()
        self.peers = PeerLoads(self.replica, admission.clock)
        admission.peers = self.peers
        self.up = False
        self.failures = 0  # exchanges failed in a row
        self._script = redis.register_script(_PUBLISH)
        self._task: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.admission_sharing_up.set_function(lambda: float(self.up))
            metrics.admission_peer_replicas.set_function(lambda: float(self.peers.replicas))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="admission-exchange")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # leave at once rather than after the TTL
            await asyncio.wait_for(self.redis.delete(self._key(self.replica)), self.ttl_s)
        self.peers.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await asyncio.wait_for(self.exchange(), self.ttl_s)
            except (RedisError, OSError, TimeoutError, ValueError) as exc:
                self.up = False
                self.failures += 1
                self.peers.clear()
                if self.metrics is not None:
                    self.metrics.redis_errors.labels(operation="admission_exchange").inc()
                if self.failures == 1:  # once per outage
                    log.warning("admission sharing unavailable: deciding on this replica's own load until Redis "
                                "answers", extra={"error": type(exc).__name__})
            else:
                if self.failures:
                    log.info("admission sharing restored", extra={"replicas": self.peers.replicas})
                self.up, self.failures = True, 0
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))

    async def exchange(self) -> None:
        """One round: publish this replica's load, read the others', merge."""
        own = snapshot(self.admission)
        listed = await self._script(keys=[self._key(self.replica), INDEX],
                                    args=[json.dumps(own, separators=(",", ":")), int(self.ttl_s * 1000),
                                          self.replica, INDEX_KEEP_S])
        others = [r.decode() if isinstance(r, bytes) else str(r) for r in listed]
        others = [r for r in others if r != self.replica]
        peers: dict[str, Any] = {}
        if others:
            for replica, raw in zip(others, await self.redis.mget([self._key(r) for r in others]), strict=True):
                if raw is not None:  # expired: that replica is gone
                    with contextlib.suppress(ValueError):
                        peers[replica] = json.loads(raw)
        self.peers.merge(own, peers)

    @staticmethod
    def _key(replica: str) -> str:
        return f"{PREFIX}:replica:{replica}"
