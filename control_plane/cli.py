"""`tts-gateway`: one entry point for the dev stack, the API server, Triton, export, tenants and migrations.

Each subcommand lives in the module that owns the behaviour; this file only dispatches, importing
lazily so that `tts-gateway serve` never pays for torch and `tts-gateway triton` never for FastAPI.
`up`, `triton`, `export` and `bench` are development tools (devtools/, export/, bench/) that the
control-plane image does not ship: they run from a source checkout.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

USAGE = """usage: tts-gateway COMMAND [ARGS]

commands:
  up        the whole dev stack: tiny or exported XTTS + piper on Triton, the API on the
            embedded store, a dev tenant and its API key printed
  serve     the API server (TTS_HOST:TTS_PORT)
  triton    start tritonserver on the model repository and wait until it is ready
  export    build served model artifacts (tts-gateway export xtts --help)
  tenants   create|list|update|rotate-key|revoke tenants and keys
  migrate   apply the database schema (Postgres/Supabase or the embedded SQLite)
  bench     run the benchmarks (tts-gateway bench --help)
"""


def _serve(argv: list[str]) -> int:
    from control_plane.server import main

    return main(argv)


def _tool(module: str, command: str) -> Callable[[list[str]], int]:
    """A command whose code lives outside the runtime package, imported only when it runs."""

    def run(argv: list[str]) -> int:
        package = module.split(".")[0]
        try:
            main = importlib.import_module(module).main
        except ModuleNotFoundError as error:
            if error.name != package:
                raise
            print(f"tts-gateway {command}: {package}/ is not installed here (it is development tooling, not part of "
                  "the control-plane image); run it from a source checkout", file=sys.stderr)
            return 2
        return int(main(argv) or 0)

    return run


def _tenants(argv: list[str]) -> int:
    from control_plane.tenants_cli import main

    return main(argv)


def _migrate(argv: list[str]) -> int:
    from control_plane.migrate import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "up": _tool("devtools.devstack", "up"),
    "serve": _serve,
    "triton": _tool("devtools.triton_cli", "triton"),
    "export": _tool("export.cli", "export"),
    "tenants": _tenants,
    "migrate": _migrate,
    "bench": _tool("bench.__main__", "bench"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"tts-gateway: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return int(command(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
