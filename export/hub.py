"""Download the released XTTS-v2 checkpoint from the Hugging Face Hub, for export only.

This is the one place the project talks to a model hub, and only when an operator asks for it with
`tts-gateway export xtts --from-hub --accept-license`; it needs network access to huggingface.co.
The served artifact is always loaded from local files.

XTTS-v2's weights are released under the Coqui Public Model License (CPML), which allows
non-commercial use only; the caller must accept it explicitly, as Coqui's own tools require
(they read COQUI_TOS_AGREED=1).
"""

from __future__ import annotations

import logging
from pathlib import Path

from export.errors import ExportError

log = logging.getLogger(__name__)

HUB_REPO_ID = "coqui/XTTS-v2"
LICENSE_NAME = "Coqui Public Model License 1.0.0 (CPML)"
LICENSE_URL = "https://coqui.ai/cpml"
LICENSE_ENV = "COQUI_TOS_AGREED"
CHECKPOINT_FILES = ("model.pth", "config.json", "vocab.json", "speakers_xtts.pth", "LICENSE.txt")


class LicenseNotAccepted(ExportError):
    """The CPML was not accepted, so nothing was downloaded."""


def license_notice() -> str:
    return (
        f"XTTS-v2 weights are licensed under the {LICENSE_NAME}, non-commercial use only: {LICENSE_URL}. "
        f"Accept it with --accept-license (or {LICENSE_ENV}=1) to download them."
    )


def fetch_from_hub(dest: str | Path, *, accept_license: bool = False, revision: str | None = None) -> Path:
    """Download coqui/XTTS-v2's checkpoint files into `dest` (needs network access); returns `dest`.

    Refuses, before any network access and without creating `dest`, unless accept_license is True.
    """
    if accept_license is not True:
        raise LicenseNotAccepted(license_notice())
    from huggingface_hub import snapshot_download

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s%s into %s (%s accepted)", HUB_REPO_ID, f"@{revision}" if revision else "", dest,
             LICENSE_NAME)
    try:
        snapshot_download(
            repo_id=HUB_REPO_ID, revision=revision, local_dir=str(dest), allow_patterns=list(CHECKPOINT_FILES)
        )
    except Exception as exc:
        raise ExportError(f"downloading {HUB_REPO_ID} failed (network access to huggingface.co is needed): {exc}") \
            from exc
    return dest
