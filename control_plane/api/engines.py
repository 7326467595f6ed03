"""GET /v1/engines: what can synthesise right now."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from control_plane.api.deps import Services, get_tenant
from control_plane.services.engines import list_engines

router = APIRouter(tags=["engines"])


class Engine(BaseModel):
    name: str = Field(examples=["xtts"])
    ready: bool
    description: str
    languages: list[str]
    sample_rate: int
    voice_cloning: bool
    voices: list[str] = Field(description="Built-in voices of this engine")
    model_version: str | None = Field(None, description="From Triton's tts_model_info gauge", examples=["3f2a9c1b0d4e"])
    test_weights: bool | None = Field(None, description="True when the model runs random test weights")
    conditioning_ready: bool | None = None


class EngineList(BaseModel):
    engines: list[Engine]


@router.get("/v1/engines", response_model=EngineList, summary="Engines with readiness, languages and model version",
            dependencies=[Depends(get_tenant)])
async def engines(services: Services) -> EngineList:
    return EngineList(engines=[Engine(**e) for e in await list_engines(services.triton)])
