"""The compose stack as users run it: the built images, `docker compose up -d --wait`, then the API.

One stack for the module (its own project name and free ports; volumes removed at the end). The
tests run in file order: the data created first must survive the restarts that follow.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from .stack import ComposeStack, ensure_images, wait_for

TIMEOUT = httpx.Timeout(120.0, connect=10.0)
LONG_TEXT = " ".join(f"This is sentence number {n} of a long answer that keeps the stream busy." for n in range(12))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    stack = ComposeStack.in_copy(tmp_path_factory.mktemp("stack"), ensure_images())
    try:
        stack.up()
        yield stack
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.down(volumes=True)


@pytest.fixture(scope="module")
def client(stack: ComposeStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=TIMEOUT) as c:
        yield c


class State:
    """What the first tests create and the restart tests look for again."""

    key = ""
    tenant_id = ""
    voice_id = ""


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


_probes = itertools.count()


def _serving(client: httpx.Client) -> bool:
    """A synthesis the engine must render (a new text each time: a cached one would answer without Triton)."""
    r = client.post("/v1/synthesize", headers=_auth(State.key), json={"text": f"Back again, time {next(_probes)}."})
    return r.status_code == 200 and r.headers.get("x-cache") != "HIT" and _wav_seconds(r.content) > 0.2


def test_health_and_admin_api(stack: ComposeStack, client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok", health
    assert health["store"]["ok"] and health["store"]["backend"] != "sqlite", health  # the compose Postgres
    assert health["redis"] == {"ok": True}, health
    assert health["test_weights"] is True  # an empty models volume: the image's tiny XTTS, flagged
    assert client.get("/ready").status_code == 200
    assert client.post("/admin/v1/tenants", json={"name": "nope"}).status_code == 401
    admin = _auth(stack.admin_token)
    created = client.post("/admin/v1/tenants", headers=admin, json={"name": "compose-user"})
    assert created.status_code == 201, created.text
    State.tenant_id, State.key = created.json()["tenant_id"], created.json()["api_key"]
    listed = client.get("/admin/v1/tenants", headers=admin).json()
    assert State.tenant_id in str(listed)
    assert client.get("/v1/tenant/config", headers=_auth(State.key)).status_code == 200
    # The README's way to the first key: the CLI inside the running container.
    cli = stack.compose("exec", "control-plane", "tts-gateway", "tenants", "--json", "create", "first", timeout=120)
    cli_key = json.loads(cli.stdout)["api_key"]
    assert client.get("/v1/tenant/config", headers=_auth(cli_key)).status_code == 200


def test_whole_and_streamed_synthesis(client: httpx.Client) -> None:
    whole = client.post("/v1/synthesize", headers=_auth(State.key), json={"text": "Hello from the compose stack."})
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"].startswith("audio/wav")
    assert _wav_seconds(whole.content) > 0.5
    chunks = []
    with client.stream("POST", "/v1/synthesize/stream", headers=_auth(State.key),
                       json={"text": "First sentence. Second sentence.", "format": "pcm"}) as r:
        assert r.status_code == 200
        chunks = [c for c in r.iter_bytes() if c]
    assert len(chunks) >= 2 and sum(map(len, chunks)) > 22050  # > 0.5 s of 16-bit PCM


def test_upload_clone_speak(client: httpx.Client) -> None:
    reference = client.post("/v1/synthesize", headers=_auth(State.key), json={
        "text": "This recording of the bundled voice is long enough to clone. It lasts a few seconds."})
    assert reference.status_code == 200 and _wav_seconds(reference.content) > 3
    up = client.post("/v1/voices/upload", headers=_auth(State.key),
                     files={"audio": ("ref.wav", reference.content, "audio/wav")},
                     data={"name": "my-voice", "language": "en"})
    assert up.status_code in (200, 201), up.text
    State.voice_id = up.json()["voice_id"]
    # The image's tiny XTTS has random weights: how soon it samples its stop token depends on the seed and
    # on the reference (Piper's random durations), and one render was once 0.085 s. Three seeded renders,
    # all from XTTS (24 kHz, where Piper speaks at 22.05 kHz), speak for more than 0.1 s together.
    seconds = 0.0
    for seed in (1, 2, 3):
        spoken = client.post("/v1/synthesize", headers=_auth(State.key),
                             json={"text": "Hello in my own voice.", "voice_id": State.voice_id, "seed": seed})
        assert spoken.status_code == 200, spoken.text
        with wave.open(io.BytesIO(spoken.content)) as w:
            assert w.getframerate() == 24000
        seconds += _wav_seconds(spoken.content)
    assert seconds > 0.1


def test_openai_endpoint(client: httpx.Client) -> None:
    r = client.post("/v1/audio/speech", headers=_auth(State.key),
                    json={"model": "tts-1", "input": "Hello!", "voice": "alloy", "response_format": "pcm"})
    assert r.status_code == 200, r.text
    assert len(r.content) > 24000  # > 0.5 s of 24 kHz s16le


def _usage_requests(client: httpx.Client) -> int:
    today = datetime.now(UTC).date()
    r = client.get("/v1/tenant/usage", headers=_auth(State.key),
                   params={"start_date": str(today - timedelta(days=1)), "end_date": str(today + timedelta(days=1))})
    assert r.status_code == 200, r.text
    return int(r.json()["totals"]["requests"])


def _data_survived(client: httpx.Client, requests_before: int) -> None:
    voices = client.get("/v1/voices", headers=_auth(State.key))
    assert voices.status_code == 200 and State.voice_id in voices.text
    assert _usage_requests(client) >= requests_before
    assert _serving(client)


def test_restart_of_the_control_plane_keeps_the_data(stack: ComposeStack, client: httpx.Client) -> None:
    before = _usage_requests(client)
    assert before >= 5
    stack.compose("restart", "control-plane", timeout=120)
    wait_for("the API back after a restart", lambda: client.get("/ready").status_code == 200, timeout=120)
    _data_survived(client, before)


def test_down_and_up_keep_the_data(stack: ComposeStack, client: httpx.Client) -> None:
    before = _usage_requests(client)
    stack.down()
    stack.up()
    _data_survived(client, before)


def test_triton_killed_then_back(stack: ComposeStack, client: httpx.Client) -> None:
    stack.compose("kill", "triton")
    started = time.monotonic()
    wait_for("/ready false with Triton gone", lambda: client.get("/ready").status_code == 503, timeout=30)
    refused = client.post("/v1/synthesize", headers=_auth(State.key), json={"text": "Anyone there?"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "engine_unavailable"
    assert "retry-after" in refused.headers
    assert time.monotonic() - started < 30
    stack.compose("start", "triton")
    # Triton's own start (loading XTTS) takes minutes on a busy CPU host; the gateway's part is to
    # notice its return: serving and ready within a minute of Triton answering ready again.
    wait_for("Triton ready again", lambda: httpx.get(f"{stack.triton_url}/v2/health/ready").status_code == 200,
             timeout=600, interval=1)
    back = time.monotonic()
    wait_for("serving again after Triton's return",
             lambda: _serving(client) and client.get("/ready").status_code == 200, timeout=60, interval=1)
    assert time.monotonic() - back < 60


def test_stop_drains_streams_in_flight(stack: ComposeStack, client: httpx.Client) -> None:
    received: list[bytes] = []
    outcome: dict[str, object] = {}
    first = threading.Event()

    def stream() -> None:
        try:
            with client.stream("POST", "/v1/synthesize/stream", headers=_auth(State.key),
                               json={"text": LONG_TEXT, "format": "pcm"}) as r:
                outcome["status"] = r.status_code
                for chunk in r.iter_bytes():
                    received.append(chunk)
                    first.set()
            outcome["complete"] = True
        except httpx.HTTPError as error:
            outcome["error"] = repr(error)
        finally:
            first.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert first.wait(120), "no audio from the long stream"
    stopped = time.monotonic()
    stack.compose("stop", "control-plane", timeout=120)
    stop_s = time.monotonic() - stopped
    reader.join(60)
    if outcome.get("complete") is not True:
        print(stack.compose("logs", "--no-color", "control-plane", check=False).stdout[-8000:])
    assert outcome.get("status") == 200 and outcome.get("complete") is True, (outcome, f"stop took {stop_s:.1f} s")
    assert sum(map(len, received)) > 12 * 22050, "the stream was cut short"  # 12 sentences, > 0.5 s each
    assert stop_s < 30, f"stop took {stop_s:.1f} s: not within the stop grace period"
    assert stack.container_state("control-plane") == {"status": "exited", "exit_code": "0"}
    stack.compose("start", "control-plane")
    wait_for("the API back after a stop", lambda: client.get("/ready").status_code == 200, timeout=120)

