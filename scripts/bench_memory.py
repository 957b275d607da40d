#!/usr/bin/env python3
"""Peak memory of ``speech transcribe`` against recording length: it should stay flat.

    .venv/bin/python scripts/bench_memory.py [--minutes 10,60] [--model M] [--decoding greedy|no-search|default]

Writes one speech-like recording per length (1 s bursts of voiced sound between pauses, 16 kHz WAV) to a temporary
folder, transcribes each in a child process of its own (``python -m speech transcribe FILE --jobs 1``) and prints
the child's peak resident memory (``ru_maxrss``) and CPU time. Recordings longer than
``speech.transcribe.LONG_FILE_SECONDS`` are featurized and decoded as they stream, a batch of segments at a time,
so a 60-minute recording should peak within a few tens of MB of a 10-minute one. ``--decoding greedy`` (default)
is the quickest; ``default`` (the decoding search) reads about 2 audio-seconds per CPU-second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def speechlike_recording(path: Path, seconds: float, seed: int = 0) -> None:
    """Voiced bursts (a harmonic series at a wandering pitch) of 0.3-1.2 s between pauses of 0.1-0.6 s, with a
    little noise, written block by block (an hour never sits in memory here either)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        written = 0
        while written < seconds * SR:
            n = int(rng.uniform(0.3, 1.2) * SR)
            t = np.arange(n) / SR
            f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
            phase = 2 * np.pi * np.cumsum(f0) / SR
            burst = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(n)
            pause = np.zeros(int(rng.uniform(0.1, 0.6) * SR))
            block = np.concatenate([0.2 * burst, pause]) + 0.002 * rng.standard_normal(n + len(pause))
            f.write(block.astype(np.float32))
            written += len(block)


def measure(path: Path, model: str | None, decoding: str) -> tuple[float, float]:
    """``(peak RSS in MiB, CPU seconds)`` of one ``speech transcribe`` process on ``path``."""
    flags = {"greedy": ["--beam", "1"], "no-search": ["--no-search"], "default": []}[decoding]
    command = [sys.executable, "-m", "speech", "transcribe", str(path), "--jobs", "1", "--no-progress", *flags,
               *(["--model", model] if model else [])]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"speech transcribe failed on {path} (status {status})")
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", default="10,60", help="recording lengths in minutes, comma-separated")
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--decoding", choices=("greedy", "no-search", "default"), default="greedy")
    args = p.parse_args(argv)
    minutes = [float(m) for m in args.minutes.split(",") if m.strip()]
    print(f"{'minutes':>8}{'peak RSS MiB':>14}{'CPU s':>9}  ({args.decoding} decoding)")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for m in minutes:
            path = Path(tmp) / f"{m:g}min.wav"
            speechlike_recording(path, m * 60)
            rss, cpu = measure(path, args.model, args.decoding)
            print(f"{m:>8g}{rss:>14.0f}{cpu:>9.1f}", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
