"""Per-tenant limits, shared by every replica through Redis (in-process on the embedded default).

- Requests per minute / hour / day: the `limits` library's sliding-window counter (two counters per
  window, O(1) storage, however high the limit). All three windows are tested before any is hit.
- Concurrent streams: a Redis sorted set per tenant whose members are held slots scored by a lease
  deadline. The holder renews the lease while it streams; a replica that dies stops renewing, and
  its slots fall out after STREAM_LEASE_S instead of leaking forever.
- Characters per calendar month (UTC): a counter per tenant and month. It is seeded from the usage
  table the first time a replica touches it (SET NX), so a flushed Redis or a restarted embedded
  server does not hand out a fresh month; a charge that would pass the quota is refused whole.
- Failed authentication per client address (key guessing): refused with 429 past AUTH_FAILURES.

Redis down (REDIS_FAILURE_MODE): "open" (default) keeps serving with this replica's in-process
limits for the time being, so an outage of the limits store never takes synthesis down (limits are
then per replica, not global); "closed" refuses what it cannot check with 503 `limits_unavailable`.
Either way `tts_redis_errors_total{operation}` counts the failures, `tts_redis_up` drops to 0, a
warning is logged (at most every LOG_EVERY_S), and Redis is tried again after RETRY_S: recovery
needs no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from control_plane.adapters.redis import limits_uri
from control_plane.errors import LimitExceeded, Unavailable
from control_plane.services.usage import next_month_start

STREAM_LEASE_S = 60.0
RETRY_S = 2.0  # after a Redis failure, use the fallback this long before trying Redis again
LOG_EVERY_S = 30.0
REDIS_ERRORS = (RedisError, StorageError, OSError, TimeoutError)
AUTH_FAILURES = RateLimitItemPerMinute(20)
KEY_PREFIX = "tts"
log = logging.getLogger(__name__)

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

_CHARGE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if cur + n > tonumber(ARGV[2]) then return {0, cur} end
cur = redis.call('INCRBY', KEYS[1], n)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, cur}
"""


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_s)}


def _windows(limits: Any) -> list[tuple[str, RateLimitItem]]:
    return [("minute", RateLimitItemPerMinute(int(limits.requests_per_minute))),
            ("hour", RateLimitItemPerHour(int(limits.requests_per_hour))),
            ("day", RateLimitItemPerDay(int(limits.requests_per_day)))]


class Limiter:
    def __init__(self, redis: Any | None, redis_url: str = "", metrics: Any | None = None,
                 month_usage: Callable[[str], Awaitable[int]] | None = None, failure_mode: str = "open") -> None:
        if failure_mode not in ("open", "closed"):
            raise ValueError(f"REDIS_FAILURE_MODE must be open or closed, not {failure_mode!r}")
        self.redis = redis
        self.metrics = metrics
        self.failure_mode = failure_mode
        self.storage = RedisStorage(limits_uri(redis_url), implementation="redispy", key_prefix=f"{KEY_PREFIX}:rl",
                                    socket_connect_timeout=2, socket_timeout=2) \
            if redis is not None else MemoryStorage()
        # Redis down and failing open: this replica's own limits stand in (see the module docstring).
        self.fallback = Limiter(None, metrics=metrics, month_usage=month_usage) \
            if redis is not None and failure_mode == "open" else None
        self._redis_down_until = 0.0
        self._redis_down = False  # a failure was seen and Redis has not answered since
        self._last_warning = -LOG_EVERY_S
        self.windows = SlidingWindowCounterRateLimiter(self.storage)
        self.month_usage = month_usage  # characters already used this month, from the usage table
        self._slots: dict[str, set[str]] = {}
        self._chars: dict[str, int] = {}
        self._seeded: set[str] = set()
        self._lock = asyncio.Lock()

    def _count(self, limit: str) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(limit=limit).inc()

    # --- Redis outages ----------------------------------------------------------------------------
    @property
    def redis_usable(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, operation: str, exc: BaseException) -> Limiter:
        """Record a Redis failure; the fallback limiter when failing open, else 503 `limits_unavailable`."""
        now = time.monotonic()
        self._redis_down_until = now + RETRY_S
        self._redis_down = True
        if self.metrics is not None:
            self.metrics.redis_errors.labels(operation=operation).inc()
            self.metrics.redis_up.set(0)
        if now - self._last_warning >= LOG_EVERY_S:
            self._last_warning = now
            log.warning("redis unavailable: failing %s", self.failure_mode,
                        extra={"operation": operation, "error": type(exc).__name__})
        return self._unavailable()

    def _unavailable(self) -> Limiter:
        if self.fallback is None:
            raise Unavailable("limits_unavailable", "limits cannot be checked right now; retry",
                           headers={"Retry-After": str(int(RETRY_S) + 1)})
        return self.fallback

    def _redis_ok(self) -> None:
        if not self._redis_down:
            return
        self._redis_down = False
        if self.metrics is not None:
            self.metrics.redis_up.set(1)
        log.info("redis reachable again")

    async def _guarded(self, operation: str, call: Callable[[Limiter], Awaitable[Any]]) -> Any:
        """`call(self)` against Redis, or `call(fallback)` while Redis is down (failing open)."""
        if self.redis is None:
            return await call(self)
        if not self.redis_usable:
            return await call(self._unavailable())
        try:
            result = await call(self)
        except REDIS_ERRORS as exc:
            return await call(self._redis_failed(operation, exc))
        self._redis_ok()
        return result

    # --- requests per minute / hour / day ------------------------------------------------------
    async def hit(self, tenant: Any) -> RateState:
        """Count one request; 429 `rate_limited` (with Retry-After) when a window is full."""
        return await self._guarded("rate_limit", lambda limiter: limiter._hit(tenant))

    async def _hit(self, tenant: Any) -> RateState:
        windows = _windows(tenant.limits)
        now = time.time()
        states: list[tuple[str, RateLimitItem, Any]] = []
        for name, item in windows:
            stats = await self.windows.get_window_stats(item, tenant.tenant_id)
            states.append((name, item, stats))
            if stats.remaining <= 0:
                retry = max(1, math.ceil(stats.reset_time - now))
                self._count(name)
                state = RateState(item.amount, 0, retry)
                raise LimitExceeded("rate_limited", f"rate limit of {item.amount} requests per {name} reached",
                               headers={"Retry-After": str(retry), **state.headers()})
        for name, item, _ in states:
            if not await self.windows.hit(item, tenant.tenant_id):
                self._count(name)
                state = RateState(item.amount, 0, 1)
                raise LimitExceeded("rate_limited", f"rate limit of {item.amount} requests per {name} reached",
                               headers={"Retry-After": "1", **state.headers()})
        # Report the tightest window: the one with the fewest requests left.
        name, item, stats = min(states, key=lambda s: s[2].remaining)
        reset = stats.reset_time - now
        # An empty window (this was its first request) resets a whole window from now.
        reset_s = math.ceil(reset) if reset >= 1 else int(item.get_expiry())
        return RateState(item.amount, max(0, stats.remaining - 1), reset_s)

    # --- concurrent streams --------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def stream_slot(self, tenant: Any) -> AsyncIterator[None]:
        """Hold one of the tenant's concurrent-stream slots; 429 `too_many_streams` when all are held."""
        limit = int(tenant.limits.max_concurrent_streams)
        slot = uuid.uuid4().hex
        key = f"{KEY_PREFIX}:streams:{tenant.tenant_id}"
        # The limiter that granted the slot (Redis, or the fallback during an outage) releases it.
        holder, ok = await self._guarded("streams", lambda limiter: limiter._acquire_as(key, slot, limit))
        if not ok:
            self._count("streams")
            raise LimitExceeded("too_many_streams", f"at most {limit} concurrent streams for this tenant",
                           headers={"Retry-After": "1"})
        renew = asyncio.create_task(self._renew(key, slot)) if holder.redis is not None else None
        try:
            yield
        finally:
            if renew is not None:
                renew.cancel()
            await asyncio.shield(holder._release(key, slot))

    async def _acquire_as(self, key: str, slot: str, limit: int) -> tuple[Limiter, bool]:
        return self, await self._acquire(key, slot, limit)

    async def _acquire(self, key: str, slot: str, limit: int) -> bool:
        if self.redis is None:
            held = self._slots.setdefault(key, set())
            if len(held) >= limit:
                return False
            held.add(slot)
            return True
        now = time.time()
        ok = await self.redis.eval(_ACQUIRE, 1, key, now, now + STREAM_LEASE_S, limit, slot,
                                   int(STREAM_LEASE_S * 2000))
        return bool(ok)

    async def _renew(self, key: str, slot: str) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(STREAM_LEASE_S / 3)
                if self.redis is not None:
                    await self.redis.zadd(key, {slot: time.time() + STREAM_LEASE_S}, xx=True)

    async def _release(self, key: str, slot: str) -> None:
        if self.redis is None:
            self._slots.get(key, set()).discard(slot)
            return
        with contextlib.suppress(Exception):
            await self.redis.zrem(key, slot)

    async def streams_held(self, tenant_id: str) -> int:
        return await self._guarded("streams", lambda limiter: limiter._streams_held(tenant_id))

    async def _streams_held(self, tenant_id: str) -> int:
        key = f"{KEY_PREFIX}:streams:{tenant_id}"
        if self.redis is None:
            return len(self._slots.get(key, ()))
        await self.redis.zremrangebyscore(key, "-inf", time.time())
        return int(await self.redis.zcard(key))

    # --- characters per month ------------------------------------------------------------------
    async def charge_characters(self, tenant: Any, n: int, now: datetime | None = None) -> int:
        """Add `n` to this month's count; 429 `quota_exceeded` (and nothing charged) past the quota.
        Returns the month's total after the charge."""
        return await self._guarded("quota", lambda limiter: limiter._charge_characters(tenant, n, now))

    async def _charge_characters(self, tenant: Any, n: int, now: datetime | None) -> int:
        now = now or datetime.now(UTC)
        quota = int(tenant.limits.monthly_characters)
        key = f"{KEY_PREFIX}:chars:{tenant.tenant_id}:{now:%Y-%m}"
        await self._seed(key, tenant.tenant_id)
        if self.redis is None:
            async with self._lock:
                used = self._chars.get(key, 0)
                ok = used + n <= quota
                if ok:
                    used = self._chars[key] = used + n
        else:
            ttl = int((next_month_start(now) - now).total_seconds()) + 7 * 86400
            ok_raw, used = await self.redis.eval(_CHARGE, 1, key, n, quota, ttl)
            ok, used = bool(ok_raw), int(used)
        if not ok:
            self._count("quota")
            retry = max(1, int((next_month_start(now) - now).total_seconds()))
            raise LimitExceeded("quota_exceeded",
                           f"monthly character quota reached ({used} of {quota} used; this request needs {n})",
                           headers={"Retry-After": str(retry)})
        return used

    async def _seed(self, key: str, tenant_id: str) -> None:
        if key in self._seeded:
            return
        if self.redis is None:
            if key not in self._chars and self.month_usage is not None:
                used = await self.month_usage(tenant_id)
                async with self._lock:
                    self._chars.setdefault(key, used)
        elif self.month_usage is not None and not await self.redis.exists(key):
            used = await self.month_usage(tenant_id)
            await self.redis.set(key, used, nx=True, ex=40 * 86400)
        self._seeded.add(key)

    # --- failed authentication per client address ----------------------------------------------
    async def auth_blocked(self, client: str) -> int | None:
        """Seconds to wait when `client` has failed authentication too often, else None."""
        return await self._guarded("auth", lambda limiter: limiter._auth_blocked(client))

    async def _auth_blocked(self, client: str) -> int | None:
        stats = await self.windows.get_window_stats(AUTH_FAILURES, "auth", client)
        if stats.remaining > 0:
            return None
        self._count("auth")
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def auth_failed(self, client: str) -> None:
        await self._guarded("auth", lambda limiter: limiter.windows.hit(AUTH_FAILURES, "auth", client))

    async def close(self) -> None:
        pass
