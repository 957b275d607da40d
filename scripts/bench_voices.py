#!/usr/bin/env python3
"""How a model copes with voices it has not heard: a manifest scored as it is and turned into other voices.

    .venv/bin/python scripts/bench_voices.py --manifest data/synth/dev.jsonl [--model M] [--beam 1] [--json OUT]

Each condition moves every utterance's F0 and formants by fixed factors through the WORLD vocoder
(``speech.augment.convert_voice``): lower and deeper, higher and brighter, and the two crossings that no resampling
reaches (a high voice with a long vocal tract, a low one with a short tract). The converted files are written to a
temporary folder and transcribed as the originals are (``speech.evaluation.evaluate``, the model's own decoding
unless ``--beam``). Prints one line per condition (WER, CER) and their mean; ``--json`` saves them. Clips without
speech are left out. Conversions are deterministic, so figures compare across models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (name, F0 factor, formant factor)
CONDITIONS = (("deeper", 0.75, 0.9), ("higher", 1.4, 1.12), ("high F0, low formants", 1.4, 0.9),
              ("low F0, high formants", 0.75, 1.12))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--beam", type=int, help="beam width; 1: greedy (default: the model's own decoding)")
    p.add_argument("--limit", type=int, help="score only the first N utterances")
    p.add_argument("--json", help="write the figures here")
    return p


def converted_copies(utterances: list, folder: Path, f0_scale: float, formant_scale: float,
                     sample_rate: int) -> list:
    """``utterances`` with their audio replaced by converted copies in ``folder`` (16-bit WAV at ``sample_rate``)."""
    from speech.evaluation import perturbed_copies

    return perturbed_copies(utterances, folder, _conversion(f0_scale, formant_scale, sample_rate), sample_rate)


def _conversion(f0_scale: float, formant_scale: float, sample_rate: int):
    from speech.augment import convert_voice

    return lambda i, wave: convert_voice(wave, sample_rate, f0_scale, formant_scale)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from speech.evaluation import evaluate_conditions, speech_utterances
    from speech.transcribe import Transcriber, model_decoding

    utterances = speech_utterances(args.manifest, args.limit)
    transcriber = Transcriber(args.model, model_decoding(args.model, args.beam))
    rate = transcriber.spec.features.sample_rate
    rows = evaluate_conditions(transcriber, utterances, "as recorded",
                               [(f"{name} (F0 x{f0:g}, formants x{formants:g})", _conversion(f0, formants, rate))
                                for name, f0, formants in CONDITIONS])
    converted = rows[1:]
    mean = {k: sum(r[k] for r in converted) / len(converted) for k in ("wer", "cer")}
    print(f"{len(utterances)} utterances, decoder {type(transcriber.decoder).__name__}")
    for row in rows:
        print(f"{row['condition']:>48}  WER {row['wer']:.3f}  CER {row['cer']:.3f}  failed {row['failed']}")
    print(f"{'converted, mean':>48}  WER {mean['wer']:.3f}  CER {mean['cer']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"manifest": args.manifest, "model": args.model or "default",
                                               "rows": rows, "converted_mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
