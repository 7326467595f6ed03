"""Voice encryption: round trip, binding to tenant/voice/field, the dev key kept with 0600."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from control_plane.services.crypto import DecryptionError, VoiceCipher
from control_plane.settings import Settings


def test_round_trip_and_binding(tmp_path):
    cipher = VoiceCipher.from_settings(Settings(tts_data_dir=tmp_path))
    nonce, ct = cipher.encrypt(b"audio bytes", "t1", "v1", "audio")
    assert b"audio bytes" not in ct and len(nonce) == 12
    assert cipher.decrypt(nonce, ct, "t1", "v1", "audio") == b"audio bytes"
    for args in [("t2", "v1", "audio"), ("t1", "v2", "audio"), ("t1", "v1", "latent")]:
        with pytest.raises(DecryptionError):
            cipher.decrypt(nonce, ct, *args)
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(DecryptionError):
        cipher.decrypt(nonce, tampered, "t1", "v1", "audio")
    sealed = cipher.seal(b"x" * 100, "t1", "v1", "embedding")
    assert cipher.open(sealed, "t1", "v1", "embedding") == b"x" * 100
    assert cipher.seal(b"same", "t", "v", "f") != cipher.seal(b"same", "t", "v", "f")  # fresh nonces


def test_dev_key_is_generated_once_with_0600(tmp_path):
    a = VoiceCipher.from_settings(Settings(tts_data_dir=tmp_path))
    key_file = tmp_path / "voice_encryption.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    sealed = a.seal(b"kept", "t", "v", "audio")
    b = VoiceCipher.from_settings(Settings(tts_data_dir=tmp_path))
    assert b.open(sealed, "t", "v", "audio") == b"kept"


def test_configured_key_is_used_and_validated(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    c = VoiceCipher.from_settings(Settings(tts_data_dir=tmp_path, voice_encryption_key=key))
    assert not (tmp_path / "voice_encryption.key").exists()
    other = VoiceCipher.from_settings(Settings(tts_data_dir=tmp_path))
    with pytest.raises(DecryptionError):
        other.open(c.seal(b"x", "t", "v", "f"), "t", "v", "f")
    with pytest.raises(ValueError):
        VoiceCipher.from_settings(Settings(voice_encryption_key=base64.b64encode(b"short").decode()))
    with pytest.raises(ValueError):
        VoiceCipher.from_settings(Settings(voice_encryption_key="not base64!!"))
