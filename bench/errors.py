"""Errors the stages raise."""


class StageUnavailable(RuntimeError):
    """A stage's component (Triton model, control-plane route) is not in this tree or cannot run here."""
