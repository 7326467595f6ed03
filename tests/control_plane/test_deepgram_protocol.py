"""Deepgram's protocol translation without a server: encodings and containers to our formats, Aura model
names through the voice map, keys as the clients present them, the error shape."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from control_plane.api import deepgram_protocol as dg
from control_plane.errors import ApiError, InvalidInput, LimitExceeded, NotFound
from control_plane.services.voice_map import check_voice_map


def _q(**kw) -> dg.SpeakQuery:
    return dg.SpeakQuery.model_validate(kw)


@pytest.mark.parametrize(("query", "websocket", "fmt", "rate", "content_type"), [
    ({}, False, "mp3", 22050, "audio/mpeg"),  # Deepgram's REST default
    ({}, True, "pcm", 24000, "audio/l16;rate=24000"),
    ({"encoding": "linear16", "sample_rate": 16000}, False, "wav", 16000, "audio/wav"),
    ({"encoding": "linear16", "container": "none", "sample_rate": 48000}, False, "pcm", 48000, "audio/l16;rate=48000"),
    ({"encoding": "mulaw"}, False, "mulaw", 8000, "audio/basic"),
    ({"encoding": "alaw", "container": "none", "sample_rate": 8000}, True, "alaw", 8000, "audio/x-alaw-basic"),
    ({"encoding": "opus"}, False, "opus", 48000, "audio/ogg"),
    ({"encoding": "flac", "sample_rate": 16000}, False, "flac", 16000, "audio/flac"),
])
def test_encodings_map_to_our_formats(query, websocket, fmt, rate, content_type):
    out = dg.output_for(_q(**query), websocket=websocket)
    assert (out.fmt, out.rate, out.content_type) == (fmt, rate, content_type)
    assert out.raw is None  # the flow makes these itself


@pytest.mark.parametrize("websocket", [False, True])
@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_g711_at_16k_is_encoded_from_pcm_at_that_rate(encoding, websocket):
    out = dg.output_for(_q(encoding=encoding, sample_rate=16000), websocket=websocket)
    assert (out.fmt, out.rate, out.raw) == ("pcm", 16000, f"pcm_{encoding}")


@pytest.mark.parametrize(("query", "websocket", "says"), [
    ({"encoding": "aac"}, False, "not available"),
    ({"encoding": "speex"}, False, "not an encoding"),
    ({"encoding": "mp3"}, True, "encoding"),
    ({"encoding": "mulaw", "sample_rate": 24000}, False, "8000 or 16000"),
    ({"encoding": "alaw", "sample_rate": 16000, "container": "wav"}, False, "container"),
    ({"encoding": "mp3", "sample_rate": 44000}, False, "mp3"),
    ({"encoding": "linear16", "container": "ogg"}, False, "container"),
    ({"encoding": "mulaw", "container": "wav"}, False, "container"),
    ({"container": "wav"}, True, "raw"),
])
def test_refused_combinations_say_why(query, websocket, says):
    with pytest.raises(ApiError) as caught:
        dg.output_for(_q(**query), websocket=websocket)
    assert caught.value.status_code == 400 and caught.value.code == "INVALID_QUERY_PARAMETER"
    assert says in caught.value.message


def test_aura_names_go_through_the_map_and_carry_their_language():
    voice_map = {"aura-2-thalia-en": "v-thalia"}
    assert dg.voice_for("aura-2-thalia-en", voice_map) == ("v-thalia", "en")
    assert dg.voice_for("AURA-2-Thalia-EN", voice_map) == ("v-thalia", "en")
    assert dg.voice_for("aura-2-celeste-es", voice_map) == ("en-US-generic", "es")
    assert dg.voice_for("aura-asteria-en", voice_map) == ("en-US-generic", "en")
    assert dg.voice_for("my-cloned-voice", voice_map) == ("my-cloned-voice", "en")
    assert dg.voice_for("aura-2-celeste-es", voice_map, "de") == ("en-US-generic", "de")


def test_voice_map_takes_aura_names_beside_openai_names():
    assert check_voice_map({"Nova": "a", "Aura-2-Thalia-EN": "b", "aura-luna-en": "c"}) == {
        "nova": "a", "aura-2-thalia-en": "b", "aura-luna-en": "c"}
    for bad in ("gandalf", "aura-2-thalia", "aura-2-thalia-english", "aura-3-x-en"):
        with pytest.raises(InvalidInput):
            check_voice_map({bad: "v"})


def _conn(headers: dict[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw, "query_string": b""})


@pytest.mark.parametrize(("headers", "key"), [
    ({"Authorization": "Token k1"}, "k1"),
    ({"Authorization": "token k1"}, "k1"),
    ({"Authorization": "bearer k2"}, "k2"),
    ({"Sec-WebSocket-Protocol": "token, k3"}, "k3"),
    ({"Sec-WebSocket-Protocol": "chat, k3"}, ""),
    ({"Authorization": "Basic abc"}, ""),
    ({}, ""),
])
def test_keys_as_the_clients_send_them(headers, key):
    assert dg.api_key(_conn(headers)) == key


def test_errors_in_deepgram_shape():
    body = dg.error_body(LimitExceeded("rate_limited", "too many"), "rid")
    assert body == {"err_code": "TOO_MANY_REQUESTS", "err_msg": "too many", "request_id": "rid",
                    "code": "rate_limited"}
    assert dg.dg_status(InvalidInput("text_too_long", "long")) == 400
    assert dg.dg_code(NotFound("voice_not_found", "no")) == "NOT_FOUND"
    assert dg.dg_code(ApiError(400, "INVALID_QUERY_PARAMETER", "x")) == "INVALID_QUERY_PARAMETER"


def test_model_names_are_plain_tokens():
    with pytest.raises(ApiError):
        dg.parse_query(HTTPConnection({"type": "http", "headers": [], "query_string": b"model=a%0d%0ab"}))
    assert dg.parse_query(HTTPConnection({"type": "http", "headers": [],
                                          "query_string": b"model=aura-2-thalia-en&tag=a&tag=b"})).tag == ["a", "b"]
