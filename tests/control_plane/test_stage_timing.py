"""TTS_STAGE_TIMING: a streamed request's stage marks, in order, logged once with its request id; off by default."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from gateway_helpers import run_gateway

from control_plane import stage_timing


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stage_records():
    handler = _Collect()
    logger = logging.getLogger("tts_gateway.stages")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


async def _stream(url: str, text: str) -> str:
    rid = "stage-" + uuid.uuid4().hex[:12]
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        r = await c.post("/admin/v1/tenants", headers={"Authorization": "Bearer test-admin-token"},
                         json={"name": f"t-{rid}"})
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
        async with c.stream("POST", "/v1/synthesize/stream", json={"text": text, "format": "pcm"},
                            headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid}) as resp:
            assert resp.status_code == 200
            assert len(b"".join([chunk async for chunk in resp.aiter_raw()])) > 0
    return rid


async def test_stream_logs_every_stage_in_order(triton_piper, tmp_path, stage_records):
    text = "Stage timing says where the first audio byte spends its time."
    with run_gateway(tmp_path, triton_piper, tts_stage_timing=True, tts_admin_token="test-admin-token") as gw:
        rid = await _stream(gw.url, text)
    mine = [r for r in stage_records if getattr(r, "request_id", "") == rid]
    assert len(mine) == 1
    marks = mine[0].stages_ms
    assert list(marks) == list(stage_timing.STAGES)  # every mark, in the order the request passed them
    values = list(marks.values())
    assert values == sorted(values) and values[0] >= 0
    assert mine[0].origin_monotonic > 0
    assert text not in str(mine[0].__dict__)  # timings only, never the request's text


async def test_stage_timing_is_off_by_default(triton_piper, tmp_path, stage_records):
    with run_gateway(tmp_path, triton_piper, tts_admin_token="test-admin-token") as gw:
        await _stream(gw.url, "No clock runs unless asked.")
    assert stage_records == []


def test_mark_without_a_clock_does_nothing():
    stage_timing.mark("authed")  # no request clock in this context: nothing to record, nothing raised
    clock, token = stage_timing.start()
    try:
        stage_timing.mark("authed")
        stage_timing.mark("authed")  # the first occurrence wins
        first = clock.marks["authed"]
        stage_timing.mark("authed")
        assert clock.marks == {"authed": first}
    finally:
        stage_timing.stop(clock, token)
    stage_timing.mark("handler")
    assert "handler" not in clock.marks
