#!/usr/bin/env python3
"""How a model reads recordings longer than the clips it trained on, and what the segment limit does about it.

    .venv/bin/python scripts/bench_long.py --manifest data/synth/dev.jsonl [--model M] [--join 4] [--gap 0.4]
        [--segments 30,10,8,6] [--beam 1] [--json OUT]

Consecutive utterances of one voice (the manifest's ``voice`` field; in order without one) are joined ``--join``
at a time, with ``--gap`` seconds of silence between them, into long recordings whose transcript is theirs joined
(groups of one are left out). The same utterances are scored one by one, then the long recordings with each
segment limit in turn (``Transcriber.max_segment_seconds``: longer audio is cut at its quietest 100 ms,
``speech.transcribe.segment_blocks``), all with the model's own decoding unless ``--beam``. Prints one line per
condition (WER, CER) and, with ``--json``, saves them. Real read speech runs longer than sentence-length synthetic
clips (LibriSpeech's test utterances average about 7 s, up to 35 s), so this is the model's long-form figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _at_least_two(value: str) -> int:
    if not value.isdigit() or int(value) < 2:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 2, got {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--join", type=_at_least_two, default=4, help="utterances per long recording (at least 2)")
    p.add_argument("--gap", type=float, default=0.4, help="seconds of silence between joined utterances")
    p.add_argument("--segments", default="30,10,8,6", help="segment limits in seconds, comma-separated")
    p.add_argument("--beam", type=int, help="beam width; 1: greedy (default: the model's own decoding)")
    p.add_argument("--json", help="write the figures here")
    return p


def group_by_voice(utterances: list, join: int) -> list[list]:
    """Consecutive runs of up to ``join`` utterances of one voice, in manifest order; runs of one are dropped."""
    by_voice: dict = {}
    for utt in utterances:
        by_voice.setdefault(utt.extra.get("voice"), []).append(utt)
    groups = [run[i:i + join] for run in by_voice.values() for i in range(0, len(run), join)]
    return [g for g in groups if len(g) > 1]


def joined_recordings(groups: list[list], folder: Path, gap_seconds: float, sample_rate: int) -> list:
    """One utterance per group: its audio joined with silence between (16-bit WAV in ``folder``), its texts."""
    import numpy as np
    import soundfile as sf

    from speech.audio import load_audio

    out = []
    gap = np.zeros(round(gap_seconds * sample_rate), np.float32)
    for i, group in enumerate(groups):
        parts = []
        for utt in group:
            parts += [load_audio(utt.audio_filepath, sample_rate), gap]
        wave = np.concatenate(parts[:-1])
        path = folder / f"long{i:05d}.wav"
        sf.write(path, np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")
        out.append(replace(group[0], audio_filepath=str(path), duration=len(wave) / sample_rate,
                           text=" ".join(u.text for u in group)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limits = [float(x) for x in args.segments.split(",") if x.strip()]
    if not limits or min(limits) <= 0:
        print(f"--segments: expected positive seconds, got {args.segments!r}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from speech.evaluation import evaluate, speech_utterances
    from speech.transcribe import Transcriber, model_decoding

    utterances = speech_utterances(args.manifest)
    groups = group_by_voice(utterances, args.join)
    if not groups:
        print(f"{args.manifest}: no two utterances of one voice to join", file=sys.stderr)
        return 2
    transcriber = Transcriber(args.model, model_decoding(args.model, args.beam))
    rows = [{"condition": "one by one", **evaluate(transcriber, [u for g in groups for u in g])}]
    with tempfile.TemporaryDirectory(prefix="speech-bench-long-") as tmp:
        long = joined_recordings(groups, Path(tmp), args.gap, transcriber.spec.features.sample_rate)
        for limit in limits:
            transcriber.max_segment_seconds = limit
            rows.append({"condition": f"joined, {limit:g} s segments", **evaluate(transcriber, long)})
    seconds = [u.duration for u in long]
    print(f"{sum(len(g) for g in groups)} utterances joined into {len(long)} recordings "
          f"({sum(seconds) / len(seconds):.1f} s on average, up to {max(seconds):.1f} s); "
          f"decoder {type(transcriber.decoder).__name__}")
    for row in rows:
        print(f"{row['condition']:>24}  WER {row['wer']:.3f}  CER {row['cer']:.3f}  failed {row['failed']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"manifest": args.manifest, "model": args.model or "default",
                                               "join": args.join, "gap": args.gap, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
