"""A fake clock and a measured engine rate for the admission unit tests (no engine, no sleeping)."""

from __future__ import annotations

from control_plane.services.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def measured(admission: Admission, clock: Clock, chars_per_s: float, engine: str = "piper") -> None:
    """Run requests one after another so the engine's rate is measured at `chars_per_s`."""
    for _ in range(20):
        admission.started(engine, "warm", 50)
        clock.now += 50 / chars_per_s
        admission.finished(engine, 50, completed=True)
