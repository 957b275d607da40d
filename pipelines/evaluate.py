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
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from speech.cli import run_job, setup_logging
from speech.pipelines.transcribe import add_decoding_arguments, transcriber_from_args

# A benchmark condition: its name, and what it does to utterance ``index``'s audio (float32 at the model's rate).
Perturbation = Callable[[int, np.ndarray], np.ndarray]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m speech evaluate", description=__doc__)
    p.add_argument("--model", help="model folder (default, or 'default': the bundled model)")
    p.add_argument("--manifest", required=True, action="append", help="manifest to score (repeatable)")
    p.add_argument("--report", help="per-utterance JSON lines report")
    add_decoding_arguments(p)
    p.add_argument("--jobs", type=int)
    return p


def evaluate(transcriber, utterances, report_path: str | None = None) -> dict:
    from speech.manifest import atomic_write
    from speech.metrics import error_rates, non_speech_rates, utterance_errors

    vocab = transcriber.spec.vocab
    refs, hyps, records, failed, skipped = [], [], [], 0, 0
    # Each distinct file is transcribed once, even if the manifest lists it twice.
    files = sorted({u.audio_filepath for u in utterances})
    results = {t.audio_filepath: t for t in transcriber.transcribe_files(files)}
    said_over_non_speech = []
    for utt in utterances:
        ref = vocab.normalize(utt.text)
        if utt.non_speech:
            # Scored on its own: the words said over it, which WER cannot count. A file that could not be read
            # is a failure, not a clip that rightly got no words.
            t = results[utt.audio_filepath]
            failed += bool(t.error)
            if not t.error:
                said_over_non_speech.append(t.text)
            records.append({"audio_filepath": utt.audio_filepath, "reference": ref, "hypothesis": t.text,
                            "confidence": round(t.confidence, 4), "non_speech": True,
                            **({"error": t.error} if t.error else {}), "word_errors": len(t.text.split()),
                            "words": 0})
            continue
        if not ref:
            skipped += 1
            continue
        t = results[utt.audio_filepath]
        if t.error:
            failed += 1
        refs.append(ref)
        hyps.append(t.text)
        records.append({"audio_filepath": utt.audio_filepath, "reference": ref, "hypothesis": t.text,
                        "confidence": round(t.confidence, 4), **({"error": t.error} if t.error else {}),
                        **utterance_errors(ref, t.text)})
    metrics = {**error_rates(refs, hyps), "utterances": len(refs), "failed": failed,
               "skipped_empty_reference": skipped,
               **({"non_speech": non_speech_rates(said_over_non_speech)} if said_over_non_speech else {})}
    if report_path:
        with atomic_write(report_path) as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return metrics


def perturbed_copies(utterances: list, folder: Path, perturb: Perturbation, sample_rate: int) -> list:
    """``utterances`` with their audio replaced by ``perturb(index, audio)``, written to ``folder`` as 16-bit WAV
    at ``sample_rate`` (clipped to [-1, 1], as a recording would be)."""
    import soundfile as sf

    from speech.audio import load_audio

    out = []
    for i, utt in enumerate(utterances):
        path = folder / f"{i:06d}.wav"
        wave = perturb(i, load_audio(utt.audio_filepath, sample_rate))
        sf.write(path, np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")
        out.append(replace(utt, audio_filepath=str(path)))
    return out


def evaluate_conditions(transcriber, utterances: list, baseline: str,
                        conditions: Sequence[tuple[str, Perturbation]]) -> list[dict]:
    """The benchmarks' rows: ``utterances`` scored as they are (condition ``baseline``), then a perturbed copy of
    them per condition, each in a temporary folder and transcribed as the originals are."""
    rows = [{"condition": baseline, **evaluate(transcriber, utterances)}]
    with tempfile.TemporaryDirectory(prefix="speech-bench-") as tmp:
        for i, (name, perturb) in enumerate(conditions):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            copies = perturbed_copies(utterances, folder, perturb, transcriber.spec.features.sample_rate)
            rows.append({"condition": name, **evaluate(transcriber, copies)})
    return rows


def speech_utterances(manifest: str, limit: int | None = None) -> list:
    """The first ``limit`` utterances of ``manifest`` with speech in them (what the benchmarks score); a clear
    error if there are none."""
    from speech.manifest import read_manifest

    utterances = [u for u in read_manifest(manifest) if not u.non_speech and u.text.strip()][:limit]
    if not utterances:
        raise SystemExit(f"{manifest}: no utterance with speech")
    return utterances


def _evaluate(args: argparse.Namespace) -> int:
    from speech.manifest import read_manifest

    transcriber = transcriber_from_args(args)
    utterances = [u for m in args.manifest for u in read_manifest(m)]
    metrics = evaluate(transcriber, utterances, args.report)
    metrics["decoder"] = type(transcriber.decoder).__name__
    print(json.dumps(metrics))
    if metrics["failed"]:
        print(f"{metrics['failed']} file(s) could not be read; see the report", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return run_job(lambda: _evaluate(args))
