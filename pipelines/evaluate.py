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
from speech.errors import SpeechError
from speech.transcribe import parse_hop_lengths

# A benchmark condition: its name, and what it does to utterance ``index``'s audio (float32 at the model's rate).
Perturbation = Callable[[int, np.ndarray], np.ndarray]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m speech evaluate", description=__doc__)
    p.add_argument("--model", help="model folder (default, or 'default': the bundled model)")
    p.add_argument("--manifest", required=True, action="append", help="manifest to score (repeatable)")
    p.add_argument("--report", help="per-utterance JSON lines report")
    p.add_argument("--beam", type=int, help="beam width; 1: greedy (default: the model's own decoding, which "
                   "for the bundled model is a beam search with its language model)")
    p.add_argument("--lm", help="KenLM model for beam search (default: the model folder's lm.binary; 'none': no LM)")
    p.add_argument("--alpha", type=float, help="LM weight of the beam search (default: the model's tuned weight)")
    p.add_argument("--beta", type=float, help="word insertion bonus of the beam search (default: the model's)")
    p.add_argument("--blank-penalty", type=float, help="taken off the CTC blank's log-probability in each frame "
                   "before the beam search: more letters, fewer dropped words (default: the model's)")
    p.add_argument("--hotwords", type=lambda text: [w.strip() for w in text.split(",") if w.strip()], default=[],
                   help="comma-separated words or phrases the beam search favours (names, jargon), e.g. "
                   "'kubernetes,anna karenina'")
    p.add_argument("--hotword-weight", type=float, help="score added per hotword matched (default 10)")
    p.add_argument("--hops", type=parse_hop_lengths,
                   help="feature hops (samples) the beam search decodes at, its best-scoring result kept: the "
                   "speaking-rate search (default: the model's own decoding's)")
    p.add_argument("--no-search", action="store_true", help="decode the model's own features only, with no search "
                   "over hops or mel filterbank edges (several times faster)")
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
    from speech.transcribe import Transcriber

    try:
        transcriber = Transcriber(args.model, beam_width=args.beam, lm_path=args.lm, alpha=args.alpha, beta=args.beta,
                                  blank_penalty=args.blank_penalty, hotwords=args.hotwords,
                                  hotword_weight=args.hotword_weight, hop_lengths=[] if args.no_search else args.hops,
                                  fmaxes=[] if args.no_search else None)
    except ValueError as e:  # decoding options that do not fit together (e.g. hotwords with greedy)
        raise SpeechError(str(e)) from None
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
