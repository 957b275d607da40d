"""``python -m speech export [--model DIR] --output BASE [--version N]``: a SavedModel for TensorFlow Serving.

Writes ``BASE/<version>/`` (TF Serving's layout; the version defaults to one more than the highest numeric
folder in BASE, or 1) atomically: a temp folder inside BASE is renamed into place, so a server polling BASE
never loads a half-written model. Signatures and behaviour are described in :mod:`speech.export`.
Prints the version folder on stdout.
"""

from __future__ import annotations

import argparse
import logging

from speech.cli import run_job, setup_logging

log = logging.getLogger(__name__)


EXAMPLES = """examples:
  speech export --output serving/speech                  the bundled model, as serving/speech/1
  saved_model_cli show --dir serving/speech/1 --all
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech export", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model folder (default, or 'default': the bundled model)")
    p.add_argument("--output", required=True, help="model base path (TF Serving's --model_base_path)")
    p.add_argument("--version", type=int, help="version folder number (default: next free)")
    return p


def _export(args: argparse.Namespace) -> int:
    from speech.export import export_saved_model

    path = export_saved_model(args.model, args.output, args.version)
    log.info("SavedModel written to %s", path)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _export(args))
