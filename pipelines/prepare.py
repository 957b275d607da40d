"""``python -m speech prepare FORMAT SRC OUT.jsonl``: a corpus layout on disk -> a manifest."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from speech.cli import run_job, setup_logging
from speech.corpora import RECIPES, prepare
from speech.manifest import atomic_write, write_manifest
from speech.pipelines.transcribe import printable

EXAMPLES = """examples:
  speech prepare librispeech LibriSpeech/dev-clean dev-clean.jsonl
  speech prepare commonvoice cv-corpus/en train.jsonl --failures failures.jsonl
  speech prepare folder recordings/ recordings.jsonl          audio files with a .txt transcript beside each
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speech prepare", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layout", choices=sorted(RECIPES), help="corpus layout")
    parser.add_argument("src", help="corpus root folder (or its CSV/TSV/metadata file)")
    parser.add_argument("output", help="manifest to write (JSON lines)")
    parser.add_argument("--failures", help="also write the failures as JSON lines here")
    args = parser.parse_args(argv)
    setup_logging()
    return run_job(lambda: _prepare(args))


def _prepare(args: argparse.Namespace) -> int:
    utterances, failures = prepare(args.layout, args.src)
    out = Path(args.output)
    # Paths under the manifest's folder are written relative (a movable corpus); others absolute.
    base = out.resolve().parent
    for utt in utterances:
        path = Path(utt.audio_filepath).resolve()
        utt.audio_filepath = os.path.relpath(path, base) if base in path.parents else str(path)
    write_manifest(out, utterances)
    if args.failures:
        with atomic_write(args.failures) as f:
            for failure in failures:
                f.write(json.dumps({"path": failure.path, "reason": failure.reason}) + "\n")
    hours = sum(u.duration for u in utterances) / 3600
    print(f"wrote {len(utterances)} utterances ({hours:.2f} h) to {out}", file=sys.stderr)
    if failures:
        print(f"skipped {len(failures)} item(s):", file=sys.stderr)
        for reason, count in Counter(f.reason for f in failures).most_common(10):
            print(f"  {count} x {reason}", file=sys.stderr)
        for failure in failures[:10]:
            print(f"  e.g. {printable(failure.path)}: {failure.reason}", file=sys.stderr)
    return 0 if utterances or not failures else 1
