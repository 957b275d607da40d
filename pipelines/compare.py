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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m speech compare", description=__doc__)
    p.add_argument("report_a", help="evaluate --report of the baseline")
    p.add_argument("report_b", help="evaluate --report of the candidate, on the same utterances")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    return p


REPORT_KEYS = ("audio_filepath", "reference", "word_errors", "words")


def read_report(path: str) -> list[dict]:
    """The records of an evaluate report, with a clear error for anything else."""
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if (not isinstance(record, dict) or not set(REPORT_KEYS) <= record.keys()
                        or not all(type(record[k]) is int and record[k] >= 0 for k in ("word_errors", "words"))):
                    raise SpeechError(f"{path}:{number}: not an evaluate report line (speech evaluate --report)")
                records.append(record)
    except OSError as e:
        raise SpeechError(f"cannot read {path}: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpeechError(f"{path}: not a JSON-lines evaluate report ({e})") from e
    return records


def compare_reports(a: list[dict], b: list[dict], confidence: float = 0.95, resamples: int = 10000,
                    seed: int = 0) -> dict:
    from speech.metrics import paired_bootstrap

    def rows(records: list[dict]) -> list[tuple]:
        return [(r["audio_filepath"], r["reference"], bool(r.get("non_speech"))) for r in records]

    if rows(a) != rows(b):
        raise SpeechError("the two reports are not of the same utterances in the same order "
                          "(evaluate both models on the same manifest)")
    # A file that failed in one run only would be scored as all words wrong there, and the other model credited.
    failed = [r["audio_filepath"] for r, s in zip(a, b) if ("error" in r) != ("error" in s)]
    if failed:
        raise SpeechError(f"{len(failed)} file(s) failed in one evaluation only (the 'error' field of the reports; "
                          f"first {failed[0]}): evaluate again where they can be read")
    speech_a, speech_b = ([r for r in rs if not r.get("non_speech")] for rs in (a, b))
    if len(speech_a) < 2:
        raise SpeechError("a comparison needs at least two utterances with speech")
    result = paired_bootstrap([r["word_errors"] for r in speech_a], [r["word_errors"] for r in speech_b],
                              [r["words"] for r in speech_a], confidence, resamples, seed)
    verdict = ("B better" if result["high"] < 0 else "B worse" if result["low"] > 0 else "no clear difference")
    out = {"utterances": len(speech_a), "words": sum(r["words"] for r in speech_a),
           "failed": sum("error" in r for r in a), **result, "verdict": verdict}
    if any(r.get("non_speech") for r in a + b):
        out["non_speech_words"] = {name: sum(r["word_errors"] for r in rs if r.get("non_speech") and "error" not in r)
                                   for name, rs in (("a", a), ("b", b))}
    return out


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
