"""``python -m speech evaluate --model DIR --manifest M.jsonl``: WER/CER of a model on a manifest.

Prints one JSON object ``{"wer", "cer", "utterances", "failed", ...}`` on stdout; ``--report`` writes one
JSON line per utterance (reference, hypothesis, errors). A file that cannot be read counts as a failure:
it is reported and scored as an empty hypothesis, so a broken test set cannot flatter the model.
A manifest line that is not a record (or a manifest with none) is named on stderr and not scored; the
exit code is then 1, and the metrics say how many (``bad_manifest_lines``).
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


def read_manifests(paths: list[str]) -> tuple[list, list[tuple[str, str]]]:
    """``(utterances, [(where, reason)])`` of the manifests: a line that is not a record, or a manifest with none,
    is named and the others are scored (a batch goes on), but the caller must not let the result pass for a whole
    test set."""
    from speech.manifest import iter_manifest

    utterances, bad = [], []
    for path in paths:
        lines = list(iter_manifest(path, bad_lines=bad))
        if not lines and not any(where.startswith(f"{path}:") for where, _ in bad):
            bad.append((path, "the manifest has no record"))
        utterances += lines
    return utterances, bad


def _evaluate(args: argparse.Namespace) -> int:
    from speech.errors import SpeechError

    utterances, bad = read_manifests(args.manifest)
    for where, reason in bad:
        print(f"{where}: {reason}", file=sys.stderr)
    if not utterances:  # a WER of 0.0 over nothing would read as a perfect score
        raise SpeechError(f"no utterance to score in {', '.join(args.manifest)}")
    transcriber = transcriber_from_args(args)
    metrics = evaluate(transcriber, utterances, args.report, progress=not args.no_progress, jobs=args.jobs)
    metrics["decoder"] = type(transcriber.decoder).__name__
    if bad:
        metrics["bad_manifest_lines"] = len(bad)
    print(json.dumps(metrics))
    if metrics["failed"]:
        print(f"{metrics['failed']} file(s) could not be read; see the report", file=sys.stderr)
    if bad:  # scored without them: the figures are not the whole test set's
        print(f"{len(bad)} manifest line(s) or manifest(s) not scored (listed above)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _evaluate(args))
