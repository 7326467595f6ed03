"""AES-256-GCM for voice data at rest (reference audio, conditioning latents, speaker embedding).

The key comes from VOICE_ENCRYPTION_KEY (base64 of 32 bytes); without it a dev key is generated
once into TTS_DATA_DIR/voice_encryption.key (mode 0600) and reused, so restarts can still read old
voices. Each blob gets its own random 96-bit nonce; the tenant id, voice id and field name are
associated data, so a blob copied to another row or tenant fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from control_plane.settings import Settings

NONCE_BYTES = 12
DEV_KEY_FILE = "voice_encryption.key"


class DecryptionError(Exception):
    """A blob did not authenticate: wrong key, wrong row, or tampering."""


def _aad(tenant_id: str, voice_id: str, field: str) -> bytes:
    return f"tts-voice:v1:{tenant_id}:{voice_id}:{field}".encode()


class VoiceCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the voice encryption key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceCipher:
        if settings.voice_encryption_key:
            try:
                key = base64.b64decode(settings.voice_encryption_key, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError("VOICE_ENCRYPTION_KEY must be base64") from exc
            return cls(key)
        return cls(load_or_create_dev_key(Path(settings.tts_data_dir)))

    def encrypt(self, plaintext: bytes, tenant_id: str, voice_id: str, field: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, _aad(tenant_id, voice_id, field))

    def decrypt(self, nonce: bytes, ciphertext: bytes, tenant_id: str, voice_id: str, field: str) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, _aad(tenant_id, voice_id, field))
        except InvalidTag as exc:
            raise DecryptionError(f"voice {field} failed authentication") from exc

    # Blobs without a nonce column carry their nonce in front.
    def seal(self, plaintext: bytes, tenant_id: str, voice_id: str, field: str) -> bytes:
        nonce, ct = self.encrypt(plaintext, tenant_id, voice_id, field)
        return nonce + ct

    def open(self, blob: bytes, tenant_id: str, voice_id: str, field: str) -> bytes:
        return self.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], tenant_id, voice_id, field)


def load_or_create_dev_key(data_dir: Path) -> bytes:
    path = data_dir / DEV_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise ValueError(f"{path} does not hold a 32-byte key") from None
        return key
    key = AESGCM.generate_key(bit_length=256)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    return key
