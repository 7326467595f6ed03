"""Where a run's results go: `<out>/results.json` (numbers plus the machine and the command) and `<out>/summary.md`."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bench", "tts_engine", "model_repository", "control_plane"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device: str = "cpu") -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        "git_commit": _git_commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def set_command(info: dict[str, Any], argv: list[str]) -> None:
    info["command"] = "python -m bench " + " ".join(argv)


def _plain(value: Any) -> Any:
    """JSON for what json cannot write itself: numpy scalars become numbers, anything else its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def _replace_text(path: Path, text: str) -> None:
    # Written beside and renamed over: a process killed mid-write leaves the previous file whole.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out_dir: str | Path, stage: str, payload: dict[str, Any], markdown: str) -> Path:
    """Merge `payload` under `stages.<stage>` of results.json and rewrite summary.md; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    data.setdefault("stages", {})[stage] = payload
    summaries = data.setdefault("_markdown", {})
    summaries[stage] = markdown
    _replace_text(path, json.dumps(data, indent=2, default=_plain) + "\n")
    order = ["quick", "engine", "length", "profile", "triton", "gateway"]
    parts = [summaries[s] for s in order if s in summaries] + [
        summaries[s] for s in summaries if s not in order
    ]
    _replace_text(out / "summary.md", "\n\n".join(parts).rstrip() + "\n")
    return out


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
