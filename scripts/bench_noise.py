#!/usr/bin/env python3
"""How a model's error rates grow with noise: a manifest scored clean and with noise added at several SNRs.

    .venv/bin/python scripts/bench_noise.py --manifest data/synth/dev.jsonl [--model M] [--snr 20,10,5,0]
        [--kind white] [--beam 1] [--json OUT]

Each utterance gets noise of ``--kind`` (``speech.augment.add_noise``: white, pink, brown or babble) at each SNR
(whole-utterance power ratio), with a fixed seed per utterance and SNR, written to a temporary folder and
transcribed as the clean files are (``speech.evaluation.evaluate``, the model's own decoding unless ``--beam``).
Prints one line per condition (WER, CER) and, with ``--json``, saves them. Clips without speech are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--snr", default="20,10,5,0", help="SNRs in dB, comma-separated")
    p.add_argument("--kind", default="white", choices=["white", "pink", "brown", "babble"])
    p.add_argument("--beam", type=int, help="beam width; 1: greedy (default: the model's own decoding)")
    p.add_argument("--limit", type=int, help="score only the first N utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the figures here")
    return p


def noisy_copies(utterances: list, folder: Path, snr_db: float, kind: str, seed: int, sample_rate: int) -> list:
    """``utterances`` with their audio replaced by noisy copies in ``folder`` (16-bit WAV at ``sample_rate``)."""
    from speech.evaluation import perturbed_copies

    return perturbed_copies(utterances, folder, _noise(snr_db, kind, seed), sample_rate)


def _noise(snr_db: float, kind: str, seed: int):
    import numpy as np

    from speech.augment import add_noise

    # A fixed draw per utterance and SNR, so that figures compare across models and runs.
    return lambda i, wave: add_noise(wave, np.random.default_rng([seed, i, round(snr_db * 10) + 1000]), snr_db, kind)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    snrs = [float(x) for x in args.snr.split(",") if x.strip()]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from speech.evaluation import evaluate_conditions, speech_utterances
    from speech.transcribe import Transcriber, model_decoding

    utterances = speech_utterances(args.manifest, args.limit)
    transcriber = Transcriber(args.model, model_decoding(args.model, args.beam))
    rows = evaluate_conditions(transcriber, utterances, "clean",
                               [(f"{args.kind} {snr:g} dB", _noise(snr, args.kind, args.seed)) for snr in snrs])
    print(f"{len(utterances)} utterances, decoder {type(transcriber.decoder).__name__}")
    for row in rows:
        print(f"{row['condition']:>14}  WER {row['wer']:.3f}  CER {row['cer']:.3f}  failed {row['failed']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"manifest": args.manifest, "model": args.model or "default",
                                               "kind": args.kind, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
