"""Errors the stages raise, and the one way a stage starts Triton."""


class StageUnavailable(RuntimeError):
    """A stage's component (Triton model, control-plane route) is not in this tree or cannot run here."""


def start_triton(server, timeout: float) -> None:
    """Start a `TritonServer` and wait until it is ready, or stop it and raise StageUnavailable."""
    from devtools.triton_server import TritonLaunchError

    try:
        server.start()
        server.wait_ready(timeout=timeout)
    except TritonLaunchError as error:
        server.stop()
        raise StageUnavailable(f"Triton did not start: {error}\n{server.log_tail(30)}") from error
