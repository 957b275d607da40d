"""Scoring a transcriber: WER/CER on a manifest's utterances with a per-utterance report (:func:`evaluate`), under
perturbed copies of the audio (:func:`evaluate_conditions`, the benchmarks' rows), and whether one report's WER is
really different from another's (:func:`compare_reports`, a paired bootstrap). ``speech evaluate`` and ``speech
compare`` are the jobs around them.

A file that cannot be read counts as a failure: it is reported and scored as an empty hypothesis, so a broken test
set cannot flatter the model. Clips marked ``"non_speech": true`` (empty transcript) are scored apart, under
``"non_speech"``: how many of them got any words, and how many words in all.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from speech.errors import SpeechError

# A benchmark condition: its name, and what it does to utterance ``index``'s audio (float32 at the model's rate).
Perturbation = Callable[[int, np.ndarray], np.ndarray]


def evaluate(transcriber, utterances, report_path: str | None = None, progress: bool = False,
             jobs: int | None = None) -> dict:
    """WER/CER of ``transcriber`` (a :class:`speech.transcribe.Transcriber`) on ``utterances``; ``report_path``: one
    JSON line per utterance (reference, hypothesis, errors); ``progress``: a bar of files on stderr when it is a
    terminal; ``jobs``: audio decoding processes (default: all cores for many files)."""
    from tqdm import tqdm

    from speech.manifest import atomic_write, json_line
    from speech.metrics import error_rates, non_speech_rates, utterance_errors

    vocab = transcriber.spec.vocab
    refs, hyps, records, failed, skipped = [], [], [], 0, 0
    # Each distinct file is transcribed once, even if the manifest lists it twice.
    files = sorted({u.audio_filepath for u in utterances})
    transcripts = tqdm(transcriber.transcribe_files(files, jobs=jobs), total=len(files), unit="file", file=sys.stderr,
                       disable=None if progress else True, dynamic_ncols=True)
    results = {t.audio_filepath: t for t in transcripts}
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
                f.write(json_line(record, allow_nan=True) + "\n")
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
