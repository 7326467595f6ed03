"""Tenant isolation at every endpoint that takes an id, on both stores; injection strings kept verbatim.

The set of tenant-facing routes with a path id is read from the OpenAPI document: a new one fails
`test_every_id_route_is_covered` until it is added here. Ids in bodies (voice_id) are tried on every
synthesis entry point. Another tenant's id is always a 404, the same answer as an id that does not
exist, so existence never leaks.
"""

from __future__ import annotations

import json

import pytest
import websockets
from gateway_helpers import backend_overrides, encode_reference, piper_speech, run_gateway

# Tenant-facing routes with a path id, and the methods tried on each.
# Every route with an id in its path, and the body each method is sent with: another tenant's id must
# answer exactly like an id that does not exist.
_TTS = {"post": {"text": "Hi."}}
ID_ROUTES: dict[str, dict[str, dict | None]] = {
    "/v1/voices/{voice_id}": {"get": None, "put": {"name": "taken"}, "delete": None},
    "/v1/lexicons/{name}": {"get": None, "put": {"apply_by_default": False}, "delete": None},
    "/v1/text-to-speech/{voice_id}": _TTS,
    "/v1/text-to-speech/{voice_id}/stream": _TTS,
    "/v1/text-to-speech/{voice_id}/with-timestamps": _TTS,
    "/v1/text-to-speech/{voice_id}/stream/with-timestamps": _TTS,
}
LEXICON = ('<?xml version="1.0" encoding="UTF-8"?><lexicon version="1.0" '
           'xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-US">'
           '<lexeme><grapheme>Acme</grapheme><alias>ack me</alias></lexeme></lexicon>')
INJECTIONS = [
    "Robert'); DROP TABLE voices;--",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7} ${jndi:ldap://x/a}",
    "../../etc/passwd",
    "\u202eevil\u200b zero\u200dwidth",
    "%00%n%s%x",
    "名前 🎙️ اسم",
]


@pytest.fixture(scope="module")
def gateway(backend, triton_server, tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw-isolation"), triton_server, **backend_overrides(backend)) as gw:
        yield gw


@pytest.fixture(scope="module")
async def owner_voice(gateway):
    """Tenant A with one cloned voice; returns (A's key, the voice id)."""
    _, key = await gateway.tenant()
    x, rate = piper_speech(6.0)
    async with gateway.client(key) as c:
        r = await c.post("/v1/voices/upload", data={"name": "owned", "language": "en"},
                         files={"audio": ("ref.wav", encode_reference(x, rate, "wav"), "audio/wav")})
        assert r.status_code == 201, r.text
        voice_id = r.json()["voice_id"]
        lexicon = await c.post("/v1/lexicons", json={"name": "owned-lexicon", "content": LEXICON})
        assert lexicon.status_code == 201, lexicon.text
    return key, voice_id


def test_every_id_route_is_covered(gateway):
    spec = gateway.app.openapi()
    found = {path: {m for m in ops if m in ("get", "put", "patch", "post", "delete")}
             for path, ops in spec["paths"].items() if "{" in path and not path.startswith("/admin/")}
    assert found == {path: set(methods) for path, methods in ID_ROUTES.items()}


async def test_another_tenants_ids_are_404_everywhere(gateway, owner_voice):
    owner_key, voice_id = owner_voice
    _, intruder = await gateway.tenant()
    async with gateway.client(intruder) as c:
        for path, methods in ID_ROUTES.items():
            url = path.format(voice_id=voice_id, name="owned-lexicon")
            for method, body in sorted(methods.items()):
                r = await c.request(method.upper(), url, json=body)
                missing = await c.request(method.upper(), path.format(voice_id="0" * 32, name="no-such-lexicon"),
                                          json=body)
                assert r.status_code == 404, (method, url, r.status_code, r.text)
                assert r.json()["error"]["code"] == missing.json()["error"]["code"]  # same as "does not exist"
        for path, body in (("/v1/synthesize", {"text": "Hi.", "voice_id": voice_id}),
                           ("/v1/synthesize/stream", {"text": "Hi.", "voice_id": voice_id}),
                           ("/v1/audio/speech", {"input": "Hi.", "voice": voice_id})):
            r = await c.post(path, json=body)
            assert r.status_code == 404, (path, r.status_code, r.text)
        for path in ("/admin/v1/tenants", "/admin/v1/tenants/x"):
            assert (await c.get(path)).status_code in (401, 403)
    url = gateway.url.replace("http://", "ws://") + "/v1/synthesize/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {intruder}"}) as ws:
        await ws.send(json.dumps({"type": "start", "voice_id": voice_id}))
        error = json.loads(await ws.recv())
    assert error["type"] == "error" and error["code"] == "voice_not_found"
    eleven = gateway.url.replace("http://", "ws://") + f"/v1/text-to-speech/{voice_id}/multi-stream-input"
    async with websockets.connect(eleven, additional_headers={"xi-api-key": intruder}) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": "c"}))
        error = json.loads(await ws.recv())
    assert error["error"] == "voice_not_found" and error["contextId"] == "c"
    async with gateway.client(owner_key) as c:  # untouched for its owner
        voice = await c.get(f"/v1/voices/{voice_id}")
    assert voice.status_code == 200 and voice.json()["name"] == "owned"


async def test_injection_strings_are_stored_and_returned_verbatim(gateway, owner_voice):
    key, voice_id = owner_voice
    async with gateway.client(key) as c:
        for text in INJECTIONS:
            r = await c.put(f"/v1/voices/{voice_id}", json={"name": text[:100], "description": text * 3})
            assert r.status_code == 200, (text, r.text)
            got = (await c.get(f"/v1/voices/{voice_id}")).json()
            assert (got["name"], got["description"]) == (text[:100], text * 3)
            listed = {v["voice_id"]: v for v in (await c.get("/v1/voices")).json()["voices"]}
            assert listed[voice_id]["name"] == text[:100]
        nul = await c.put(f"/v1/voices/{voice_id}", json={"name": "nul\x00byte"})
        assert nul.status_code == 422 and nul.json()["error"]["code"] == "invalid_field"  # never a 500
        assert len((await c.get("/v1/voices")).json()["voices"]) >= 2  # the table is still there
