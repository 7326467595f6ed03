"""GET /health (always 200: what works and what does not), GET /ready (503 with reasons until the
replica can serve), GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psutil
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from control_plane import __version__
from control_plane.api.deps import Services
from control_plane.state import AppState

router = APIRouter(tags=["health"])

# The models Triton serves for the API; piper is the default engine, so the API is ready with it alone.
ENGINE_MODELS = ("piper", "xtts", "xtts_condition")
REQUIRED_MODELS = ("piper",)
CHECK_TIMEOUT_S = 3.0


class EngineHealth(BaseModel):
    ready: bool
    model_version: str | None = None
    test_weights: bool | None = Field(None, description="True when the model serves random test weights")


class Health(BaseModel):
    status: str = Field(description="ok, degraded (an engine or dependency is down) or draining")
    version: str
    uptime_s: float
    engines: dict[str, EngineHealth]
    test_weights: bool = Field(description="True when any served model runs test weights: not for production")
    store: dict[str, Any]
    redis: dict[str, Any] | None
    admission_sharing: dict[str, Any] | None = Field(
        None, description="With Redis: whether admission sees the other control-plane replicas' load (`ok`) and "
        "how many it counts (`replicas`); null when each replica decides alone")
    active_streams: int
    memory: dict[str, float]


async def _check(coro: Any) -> tuple[bool, str | None]:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT_S)
        return True, None
    except Exception as exc:  # noqa: BLE001 - any failure is "not ok", reported by type only
        return False, type(exc).__name__


async def _engines(services: AppState) -> dict[str, EngineHealth]:
    async def ready(name: str) -> bool:
        with contextlib.suppress(Exception):
            return bool(await asyncio.wait_for(services.triton.model_ready(name), CHECK_TIMEOUT_S))
        return False

    states = await asyncio.gather(*(ready(n) for n in ENGINE_MODELS))
    try:
        info = await asyncio.wait_for(services.triton.model_info(), CHECK_TIMEOUT_S)
    except Exception:  # noqa: BLE001
        info = {}
    out = {}
    for name, ok in zip(ENGINE_MODELS, states, strict=True):
        meta = info.get(name)
        out[name] = EngineHealth(ready=ok, model_version=meta.model_version if meta else None,
                                 test_weights=meta.test_weights if meta else None)
    return out


async def _dependencies(services: AppState) -> tuple[tuple[bool, str | None], tuple[bool, str | None] | None]:
    store = _check(services.store.ping())
    if services.redis is None:
        return await store, None
    s, r = await asyncio.gather(store, _check(services.redis.ping()))
    return s, r


@router.get("/health", response_model=Health, summary="Service health (200 even when degraded)")
async def health(services: Services) -> Health:
    engines, (store, redis) = await asyncio.gather(_engines(services), _dependencies(services))
    degraded = not store[0] or (redis is not None and not redis[0]) or not all(e.ready for e in engines.values())
    status = "draining" if services.streams.draining else "degraded" if degraded else "ok"
    proc = psutil.Process()
    return Health(
        status=status, version=__version__, uptime_s=round(time.monotonic() - services.started_monotonic, 1),
        engines=engines, test_weights=any(e.test_weights for e in engines.values()),
        store={"backend": services.store.backend, "ok": store[0], **({"error": store[1]} if store[1] else {})},
        redis=None if redis is None else {"ok": redis[0], **({"error": redis[1]} if redis[1] else {})},
        admission_sharing=None if services.admission_exchange is None else {
            "ok": services.admission_exchange.up, "replicas": services.admission_exchange.peers.replicas},
        active_streams=services.streams.active,
        memory={"rss_mb": round(proc.memory_info().rss / 2**20, 1),
                "system_available_mb": round(psutil.virtual_memory().available / 2**20, 1)},
    )


@router.get("/ready", summary="Readiness: 200 when this replica can serve, 503 with the reasons otherwise")
async def ready(services: Services) -> JSONResponse:
    reasons: list[str] = []
    (store, redis), triton_ok = await asyncio.gather(_dependencies(services),
                                                     _check_true(services.triton.server_ready()))
    if services.streams.draining:
        reasons.append("draining: the server is shutting down")
    if not store[0]:
        reasons.append(f"store unreachable ({store[1]})")
    if redis is not None and not redis[0] and services.settings.redis_failure_mode == "closed":
        reasons.append(f"redis unreachable ({redis[1]})")  # failing open, this replica still serves
    if not triton_ok:
        reasons.append("triton unreachable or not ready")
    else:
        for name in REQUIRED_MODELS:
            if not await _check_true(services.triton.model_ready(name)):
                reasons.append(f"triton model {name} not ready")
    if reasons:
        return JSONResponse({"ready": False, "reasons": reasons}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"ready": True, "reasons": []})


async def _check_true(coro: Any) -> bool:
    try:
        return bool(await asyncio.wait_for(coro, CHECK_TIMEOUT_S))
    except Exception:  # noqa: BLE001
        return False


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: Services) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
