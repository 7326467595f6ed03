"""`tts-gateway export ...`: build served model artifacts.

  export xtts --checkpoint DIR --output DIR [--no-onnx] [--overwrite]
  export xtts --from-hub --accept-license --output DIR [--revision REV] [--no-onnx] [--overwrite]
  export xtts --tiny --output DIR [--seed N] [--no-onnx] [--overwrite]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from export.errors import ExportError

# Libraries that narrate every optimisation pass at INFO.
_CHATTY_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx", "TTS")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tts-gateway export", description="Build served model artifacts.")
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    xtts = models.add_parser(
        "xtts",
        help="export a Coqui XTTS-v2 checkpoint (or the tiny test model) as a Triton-served artifact",
        description="Export a Coqui XTTS-v2 checkpoint as the artifact XTTS_MODEL_PATH points at.",
    )
    source = xtts.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, metavar="DIR",
                        help="folder with model.pth, config.json, vocab.json [, speakers_xtts.pth]")
    source.add_argument("--from-hub", action="store_true",
                        help="download coqui/XTTS-v2 from the Hugging Face Hub first (needs network access)")
    source.add_argument("--tiny", action="store_true", help="random tiny test weights (noise, not speech)")
    xtts.add_argument("--output", type=Path, required=True, metavar="DIR", help="the artifact folder to write")
    xtts.add_argument("--accept-license", action="store_true",
                      help="accept the Coqui Public Model License (CPML) for --from-hub (or COQUI_TOS_AGREED=1)")
    xtts.add_argument("--revision", help="hub revision (commit, tag or branch) for --from-hub")
    xtts.add_argument("--seed", type=int, default=0, help="random seed of the tiny weights (default 0)")
    xtts.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX vocoder")
    xtts.add_argument("--overwrite", action="store_true", help="replace an existing artifact at --output")
    return parser


def _export_xtts(args: argparse.Namespace) -> Path:
    from export.hub import HUB_REPO_ID, LICENSE_ENV, LicenseNotAccepted, fetch_from_hub, license_notice
    from export.xtts import export_tiny, export_xtts

    if args.tiny:
        return export_tiny(args.output, seed=args.seed, onnx=args.onnx, overwrite=args.overwrite)
    if args.checkpoint is not None:
        return export_xtts(args.checkpoint, args.output, onnx=args.onnx, overwrite=args.overwrite)
    accepted = args.accept_license or os.environ.get(LICENSE_ENV) == "1"
    if not accepted:
        raise LicenseNotAccepted(license_notice())
    if args.output.exists() and not args.overwrite:
        raise ExportError(f"{args.output} already exists; pass --overwrite to replace it")
    download_parent = args.output.absolute().parent
    download_parent.mkdir(parents=True, exist_ok=True)
    download = Path(tempfile.mkdtemp(prefix=".xtts-v2-download-", dir=download_parent))
    try:
        fetch_from_hub(download, accept_license=accepted, revision=args.revision)
        return export_xtts(
            download, args.output, onnx=args.onnx, overwrite=args.overwrite,
            source={"kind": "hub", "repo_id": HUB_REPO_ID, "revision": args.revision, "path": None},
        )
    finally:
        shutil.rmtree(download, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the export command; returns the process exit status (0 on success)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    if args.accept_license and not args.from_hub:
        print("error: --accept-license only applies to --from-hub", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        path = _export_xtts(args)
    except (ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
