"""``python -m speech compare A.jsonl B.jsonl``: is model B's WER really different from model A's?

A and B are ``speech evaluate --report`` files of two models (or decoders) on the same manifest. The speech
utterances are paired and resampled together (a paired bootstrap, :func:`speech.metrics.paired_bootstrap`); the
job prints one JSON object: both WERs, the difference ``B - A``, its confidence interval (``low``, ``high``) and a
``verdict``: ``"B better"`` or ``"B worse"`` when the interval leaves out zero, else ``"no clear difference"``. Clips
without speech are not in WER; the words each model said over them are printed beside it (``non_speech_words``).
Both reports must list the same files in the same order, and a file may fail (``"error"``) in both or in neither:
a file that failed in one run only would be scored as all words wrong there (``failed`` counts those of both).
"""

from __future__ import annotations

import argparse
import json

from speech.cli import run_job, setup_logging
from speech.errors import SpeechError
from speech.evaluation import compare_reports, read_report

EXAMPLES = """examples:
  speech evaluate --manifest test.jsonl --report a.jsonl
  speech evaluate --model runs/new --manifest test.jsonl --report b.jsonl
  speech compare a.jsonl b.jsonl                                     is runs/new really better?
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speech compare", description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report_a", help="evaluate --report of the baseline")
    p.add_argument("report_b", help="evaluate --report of the candidate, on the same utterances")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    return p


def _compare(args: argparse.Namespace) -> int:
    if not 0 < args.confidence < 1:
        raise SpeechError("--confidence must be between 0 and 1")
    if args.resamples < 100:
        raise SpeechError("--resamples must be at least 100")
    result = compare_reports(read_report(args.report_a), read_report(args.report_b), args.confidence,
                             args.resamples, args.seed)
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _compare(args))
