"""Admission decided before the expensive work (services/flow.py): a request the engine cannot take is
refused on the estimate of its first engine call, before the stream slot, the plan, the cache and the
charge; an admitted one is never decided again; a request this replica knows to be cached is still served.

The flow runs with the real Admission (fake clock, rate measured through its own accounting), the real
SynthesisService's estimate and stream tracker, and spies for what the refusal must not reach (prepare, the
limiter's slot and charge, usage). The HTTP answer goes through the app's one error mapper.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from admission_helpers import Clock, measured
from fastapi import FastAPI

from control_plane.adapters.cache import CacheEntry
from control_plane.errors import InvalidInput, install_error_handlers
from control_plane.services import audio as A
from control_plane.services.admission import Admission
from control_plane.services.flow import Caller, SynthesisFlow
from control_plane.services.planning import Plan, Segment
from control_plane.services.stream_tracker import StreamTracker
from control_plane.services.synthesis import Prepared, SynthesisRequest, SynthesisService
from control_plane.services.tenants import TenantContext, TenantLimits
from control_plane.services.voices import PIPER_VOICE, ResolvedVoice

RATE = 100.0  # characters per second, as measured
BUSY = TenantContext(tenant_id="busy", name="busy", limits=TenantLimits())
QUIET = TenantContext(tenant_id="quiet", name="quiet", limits=TenantLimits())
SENTENCE = "Is anyone there? I have a question about my bill."


class Limiter:
    def __init__(self) -> None:
        self.slots = 0
        self.charged: list[int] = []

    @contextlib.asynccontextmanager
    async def stream_slot(self, tenant: Any) -> AsyncIterator[None]:
        self.slots += 1
        yield

    async def charge_characters(self, tenant: Any, n: int) -> int:
        self.charged.append(n)
        return n


class Usage:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def record(self, record: Any) -> None:
        self.records.append(record)


class Cache:
    def __init__(self) -> None:
        self.entries: dict[str, CacheEntry] = {}

    async def get(self, key: str) -> CacheEntry | None:
        return self.entries.get(key)

    async def set(self, key: str, entry: CacheEntry) -> None:
        self.entries[key] = entry


class Synthesis(SynthesisService):
    """The real estimate; `prepare` plans the text as one segment per sentence cut (no store, no engine) and
    counts its calls. `during_prepare` runs inside it (to change the load while a request is being planned)."""

    def __init__(self) -> None:
        super().__init__(engine=None, voices=None)  # type: ignore[arg-type]
        self.prepared = 0
        self.during_prepare: Any = None

    async def prepare(self, tenant_id: str, req: SynthesisRequest, voice: ResolvedVoice | None = None) -> Prepared:
        self.prepared += 1
        if req.format not in A.FORMATS:  # the first check the real prepare makes
            raise InvalidInput("unsupported_format", "format must be one of " + ", ".join(A.FORMATS))
        if self.during_prepare is not None:
            self.during_prepare()
        text = req.text or ""
        first = text.split("?")[0] + "?" if "?" in text else text
        segments = [Segment(text=first.upper())] + ([Segment(text=text[len(first):].strip())] if first != text else [])
        return Prepared(request=req, plan=Plan(segments), voices={None: ResolvedVoice(PIPER_VOICE, "piper", 1, "en")},
                        fmt=req.format, rate=22050, engine="piper", cache_key=f"{tenant_id}:{text}:{req.format}",
                        model_versions={"piper": "1"})


@pytest.fixture
def parts() -> dict[str, Any]:
    clock = Clock()
    admission = Admission(max_wait_s=0.5, min_inflight=1, clock=clock)
    measured(admission, clock, RATE)
    synthesis, limiter, usage, cache = Synthesis(), Limiter(), Usage(), Cache()
    streams = StreamTracker(100)
    flow = SynthesisFlow(synthesis, None, cache, limiter, usage, streams, None, admission)  # type: ignore[arg-type]
    return {"flow": flow, "admission": admission, "synthesis": synthesis, "limiter": limiter, "usage": usage,
            "cache": cache, "streams": streams}


def _app(flow: SynthesisFlow) -> FastAPI:
    """One route through the flow and the app's error mapper, as a surface is."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/speak/{tenant}")
    async def speak(tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        who = BUSY if tenant == "busy" else QUIET
        speech = await flow.open(Caller(who, "test", f"r-{body['text'][:8]}"), SynthesisRequest(**body),
                                 streaming=True)
        outcome = await speech.finish(200)
        return {"cache_hit": speech.cache_hit, "characters": outcome.characters}

    return app


async def _post(flow: SynthesisFlow, tenant: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(flow)), base_url="http://gw") as client:
        return await client.post(f"/speak/{tenant}", json={"format": "pcm", **body})


def _flood(admission: Admission, tenant: str = "busy", chars: int = 1000) -> None:
    """`chars` of the tenant's work in flight on Piper: ten seconds at the measured rate."""
    admission.started("piper", f"{tenant}-flood", chars, tenant)


async def test_refused_before_the_slot_the_plan_and_the_charge(parts) -> None:
    _flood(parts["admission"])
    r = await _post(parts["flow"], "busy", text=SENTENCE)
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "engine_overloaded" and "piper engine is at capacity" in error["message"]
    assert int(r.headers["Retry-After"]) >= 1 and error["retry_after_s"] == int(r.headers["Retry-After"])
    # none of the expensive work happened, nothing was charged, recorded, held or reserved
    assert parts["synthesis"].prepared == 0
    assert parts["limiter"].slots == 0 and parts["limiter"].charged == []
    assert parts["usage"].records == []
    assert parts["streams"].active == 0
    assert parts["admission"].loads["piper"].reserved_chars == 0


async def test_quiet_tenant_beside_the_flood_is_admitted_and_served(parts) -> None:
    _flood(parts["admission"])
    r = await _post(parts["flow"], "quiet", text=SENTENCE)
    assert r.status_code == 200, r.text
    assert parts["synthesis"].prepared == 1 and parts["limiter"].slots == 1
    assert parts["limiter"].charged == [r.json()["characters"]]
    assert parts["admission"].loads["piper"].reserved_chars == 0  # finished: its reservation given back


async def test_admitted_early_is_not_refused_later_and_its_reservation_becomes_exact(parts) -> None:
    admission, synthesis = parts["admission"], parts["synthesis"]
    decisions: list[tuple[str, int]] = []
    admit = admission.admit

    def counted(engine: str, request_id: str, chars: int, *args: Any, **kwargs: Any) -> Any:
        decisions.append((engine, chars))
        return admit(engine, request_id, chars, *args, **kwargs)

    admission.admit = counted
    reserved: list[int] = []

    def flood_while_planning() -> None:  # the engine fills up while this request is being planned
        reserved.append(admission.loads["piper"].tenants["busy"].reserved_chars)
        _flood(admission)

    synthesis.during_prepare = flood_while_planning
    speech = await parts["flow"].open(Caller(BUSY, "test", "r1"), SynthesisRequest(text=SENTENCE, format="pcm"),
                                      streaming=True)
    # one decision, on the estimate: the first sentence as written
    assert decisions == [("piper", len("Is anyone there?"))]
    assert reserved == [len("Is anyone there?")]
    # the plan's first call is what stays reserved until the engine starts it
    first = speech.prepared.first_call()
    assert first is not None and speech._ticket is not None
    assert (speech._ticket.engine, speech._ticket.chars) == first
    assert admission.loads["piper"].tenants["busy"].reserved_chars == first[1]
    await speech.finish(200)
    assert admission.loads["piper"].reserved_chars == 0
    assert parts["streams"].active == 0


async def test_a_request_known_to_be_cached_is_served_under_overload(parts) -> None:
    flow, admission, cache = parts["flow"], parts["admission"], parts["cache"]
    speech = await flow.open(Caller(BUSY, "test", "r1"), SynthesisRequest(text=SENTENCE, format="pcm"),
                             streaming=False)
    await flow.store(speech.prepared, b"\x00\x01" * 100, speech.stats, speech._known)  # as a rendering stores it
    await speech.finish(200)
    assert cache.entries

    _flood(admission)
    assert not flow.serves_from_cache("busy")  # stored, never served from the cache yet
    hit = await _post(flow, "busy", text=SENTENCE)
    assert hit.status_code == 200 and hit.json()["cache_hit"] is True
    assert flow.serves_from_cache("busy") and not flow.serves_from_cache("quiet")  # the admission gate lets it by
    other = await _post(flow, "busy", text="Something nobody asked before?")
    assert other.status_code == 503
    assert admission.loads["piper"].reserved_chars == 0


async def test_bad_request_under_overload_gets_its_own_error(parts) -> None:
    _flood(parts["admission"])
    r = await _post(parts["flow"], "busy", text=SENTENCE, format="aac")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_format"
    assert parts["synthesis"].prepared == 1  # no estimate for a request prepare refuses: prepare answers it
    assert [u.status_code for u in parts["usage"].records] == [422]


def test_estimate_of_the_first_engine_call() -> None:
    synthesis = SynthesisService(engine=None, voices=None)  # type: ignore[arg-type]
    estimate = synthesis.first_call_estimate
    assert estimate(SynthesisRequest(text="  Hello there. How are you?")) == ("piper", len("Hello there."))
    assert estimate(SynthesisRequest(text="Hi.", voice_id="5b0c7a52-8d2e-4c1f-9a7e-1f0f3c2b9d10",
                                     language="de")) == ("xtts", 3)
    long = "word " * 400  # no sentence end: the first cut is at the language's length limit
    engine, chars = estimate(SynthesisRequest(text=long)) or ("", 0)
    assert engine == "piper" and 0 < chars <= 400
    # no estimate: SSML, an unknown voice form, a language or format the request will be refused for
    assert estimate(SynthesisRequest(ssml="<speak>Hi.</speak>")) is None
    assert estimate(SynthesisRequest(text="Hi.", voice_id="not-a-voice")) is None
    assert estimate(SynthesisRequest(text="Hallo.", language="de")) is None  # Piper speaks English only
    assert estimate(SynthesisRequest(text="Hi.", format="aac")) is None
    assert estimate(SynthesisRequest(text="   ")) is None
