"""Several real Triton replicas (piper only) behind one gateway; the fault tests' killable server is reused."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hardening"))  # fault_helpers
