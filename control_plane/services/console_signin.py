"""One-time console sign-in codes for the dev stack (`tts-gateway up` / `make run`).

`tts-gateway up` prints `/console/#signin=CODE` so a first-time user lands in the playground with
no key to paste. The code is not the API key: it is a random 256-bit token, good once, for ten
minutes. The dev stack writes a small owner-only JSON file (CONSOLE_SIGNIN_CODE_FILE) holding the
code's SHA-256, its expiry and the dev tenant's key; the gateway exchanges a matching code for that
key once. Without the setting (every production install) the exchange does not exist.

Single use holds across workers and replicas sharing the file: a redeemer claims the file by an
atomic rename before reading the key, so only one request can ever get it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CODE_TTL_S = 600.0
MAX_FILE_BYTES = 4096  # the file is a few hundred bytes; refuse to read anything larger


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def issue_code(path: Path, api_key: str, ttl_s: float = CODE_TTL_S) -> str:
    """Write a fresh code for `api_key` to `path` (0600, replacing any earlier one); return the code."""
    code = secrets.token_urlsafe(32)
    body = json.dumps({"code_sha256": _digest(code), "expires_at": time.time() + ttl_s, "api_key": api_key})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    return code


@dataclass(frozen=True)
class Redeemed:
    api_key: str


def _read(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def redeem(path: Path, code: str, now: float | None = None) -> Redeemed | None:
    """The key a valid, unexpired, unused code stands for (consuming it), else None.

    Blocking file I/O: call from a thread."""
    data = _read(path)
    if data is None:
        return None
    expected, expires_at, api_key = data.get("code_sha256"), data.get("expires_at"), data.get("api_key")
    if not (isinstance(expected, str) and isinstance(expires_at, int | float) and isinstance(api_key, str)):
        return None
    if not hmac.compare_digest(_digest(code), expected):
        return None
    if (time.time() if now is None else now) >= expires_at:
        path.unlink(missing_ok=True)  # a stale code is of no further use
        return None
    claimed = path.with_name(f".{path.name}.used-{uuid.uuid4().hex}")
    try:
        os.rename(path, claimed)  # atomic: of two requests racing with the same code, one wins
    except FileNotFoundError:
        return None
    try:
        again = _read(claimed)  # the file could have been replaced by a fresh code in between
        if again is None or again.get("code_sha256") != expected:
            return None
        return Redeemed(api_key=api_key)
    finally:
        claimed.unlink(missing_ok=True)
