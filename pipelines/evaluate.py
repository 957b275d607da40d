"""``python -m speech evaluate --model DIR --manifest M.jsonl``: WER/CER of a model on a manifest.

Prints one JSON object ``{"wer", "cer", "utterances", "failed", ...}`` on stdout; ``--report`` writes one
JSON line per utterance (reference, hypothesis, errors). A file that cannot be read counts as a failure:
it is reported and scored as an empty hypothesis, so a broken test set cannot flatter the model.
Clips marked ``"non_speech": true`` (empty transcript) are scored apart, under ``"non_speech"``: how many of
them got any words, and how many words in all.
"""

from __future__ import annotations

import argparse
import json
import sys

from speech.cli import run_job, setup_logging
from speech.evaluation import evaluate
from speech.pipelines.transcribe import add_decoding_arguments, transcriber_from_args

EXAMPLES = """examples:
  speech evaluate --manifest test.jsonl                              the bundled model
  speech evaluate --model runs/small --manifest test.jsonl --report a.jsonl --beam 1
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech evaluate", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model folder (default, or 'default': the bundled model)")
    p.add_argument("--manifest", required=True, action="append", help="manifest to score (repeatable)")
    p.add_argument("--report", help="per-utterance JSON lines report")
    add_decoding_arguments(p)
    p.add_argument("--jobs", type=int, help="audio decoding processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _evaluate(args: argparse.Namespace) -> int:
    from speech.manifest import read_manifest

    transcriber = transcriber_from_args(args)
    utterances = [u for m in args.manifest for u in read_manifest(m)]
    metrics = evaluate(transcriber, utterances, args.report, progress=not args.no_progress, jobs=args.jobs)
    metrics["decoder"] = type(transcriber.decoder).__name__
    print(json.dumps(metrics))
    if metrics["failed"]:
        print(f"{metrics['failed']} file(s) could not be read; see the report", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _evaluate(args))
