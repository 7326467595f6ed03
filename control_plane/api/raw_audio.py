"""Raw audio encodings the provider-compatible surfaces speak, made from the flow's s16le PCM.

The flow streams and caches s16le at the asked rate; Cartesia's and Deepgram's raw encodings (float,
G.711 μ-law and A-law at any rate) are a per-chunk conversion of it, so they need no format of their
own in the flow or the cache.
"""

from __future__ import annotations

import numpy as np

from control_plane.services import audio as A


class RawConverter:
    """s16le PCM (what the flow streams and caches) as the asked encoding, chunk by chunk at any rate."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._odd = b""  # a byte left over when a chunk ends inside a sample

    def convert(self, data: bytes) -> bytes:
        if self.encoding == "pcm_s16le":
            return data
        data, self._odd = self._odd + data, b""
        if len(data) % 2:
            data, self._odd = data[:-1], data[-1:]
        pcm = np.frombuffer(data, dtype="<i2")
        if self.encoding == "pcm_f32le":
            return (pcm.astype(np.float32) / 32768.0).astype("<f4").tobytes()
        return A.mulaw_encode(pcm) if self.encoding == "pcm_mulaw" else A.alaw_encode(pcm)
