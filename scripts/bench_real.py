#!/usr/bin/env python3
"""Real speech, side by side with the peer: our decodings and PocketSphinx on the same clips, in one run.

    .venv/bin/python scripts/bench_real.py --manifest ../shared/realdev/manifest.jsonl

Each system runs in a child process of this one (so that its whole cost is its own: start-up, model loading and
decoding) and prints, on the same clips: WER, CER, the share of clips with speech that got an empty text, and
CPU-seconds per audio-second, whole process and decoding alone (worker processes included in both).

Systems: ``default`` (the model folder's own decoding), ``no-search`` (LM beam search on the model's own features),
``greedy`` (``--beam 1``), and ``pocketsphinx`` (PocketSphinx 5.1.1 with its bundled US English acoustic model,
dictionary and language model; ``pip install -r requirements-bench.txt``). A system that cannot run here is
reported and skipped. ``--report-dir DIR`` writes each system's per-utterance report in the format of ``speech
evaluate --report``, so that ``python -m speech compare`` can test two of them for a real difference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SYSTEMS = ("default", "no-search", "greedy", "pocketsphinx")
DEFAULT_MANIFEST = ROOT.parent / "shared" / "realdev" / "manifest.jsonl"


def _cpu() -> float:
    """CPU-seconds of this process and its waited-for children (worker pools included)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# ---------------------------------------------------------------------------------------------- workers

def _ours(system: str, model: str | None, utterances: list, report: str) -> dict:
    from speech.evaluation import evaluate
    from speech.transcribe import Transcriber, model_decoding

    options = {"default": {}, "no-search": {"hop_lengths": (), "fmaxes": ()}, "greedy": {"beam_width": 1}}[system]
    transcriber = Transcriber(model, model_decoding(model, **options))
    start = _cpu()
    evaluate(transcriber, utterances, report)
    return {"decode_cpu": _cpu() - start}


def pocketsphinx_decoder():
    """PocketSphinx's decoder with its bundled US English model, dictionary and LM (its defaults), quiet."""
    from pocketsphinx import Config, Decoder

    config = Config()
    config["loglevel"] = "FATAL"
    return Decoder(config)


def pocketsphinx_text(decoder, wave) -> str:
    """PocketSphinx's transcript of a 16 kHz float waveform, normalised to our vocabulary (fillers dropped)."""
    import numpy as np

    from speech.text import normalize_text

    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    words = [] if hyp is None else [w for w in hyp.hypstr.split() if not (w.startswith("<") or w.startswith("["))]
    return normalize_text(" ".join(w.split("(")[0] for w in words))


def _pocketsphinx(utterances: list, report: str) -> dict:
    from speech.audio import load_audio
    from speech.manifest import atomic_write
    from speech.metrics import utterance_errors
    from speech.text import normalize_text

    decoder = pocketsphinx_decoder()
    start = _cpu()
    with atomic_write(report) as f:
        for utt in utterances:
            record = {"audio_filepath": utt.audio_filepath, "reference": normalize_text(utt.text)}
            try:
                record["hypothesis"] = pocketsphinx_text(decoder, load_audio(utt.audio_filepath, 16000))
            except Exception as e:  # a file PocketSphinx cannot read is a failure, scored as empty
                record.update(hypothesis="", error=f"{type(e).__name__}: {e}")
            record.update(confidence=0.0, **utterance_errors(record["reference"], record["hypothesis"]))
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {"decode_cpu": _cpu() - start}


def worker(system: str, manifest: str, model: str | None, report: str) -> int:
    from speech.manifest import read_manifest

    utterances = [u for u in read_manifest(manifest) if u.text.strip() and not u.non_speech]
    result = _pocketsphinx(utterances, report) if system == "pocketsphinx" else _ours(system, model, utterances,
                                                                                      report)
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------- parent

def summarise(report: str) -> dict:
    """WER, CER and the share of empty outputs from a per-utterance report."""
    from speech.metrics import error_rates

    records = [json.loads(line) for line in Path(report).read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in records if r["reference"].strip() and not r.get("non_speech")]
    rates = error_rates([r["reference"] for r in records], [r["hypothesis"] for r in records])
    empty = sum(not r["hypothesis"].strip() for r in records)
    return {**rates, "clips": len(records), "empty": empty, "empty_share": empty / max(len(records), 1),
            "failed": sum("error" in r for r in records)}


def run_system(system: str, manifest: str, model: str | None, report: str, audio_seconds: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", system, "--manifest", manifest,
               "--report", report, *(["--model", model] if model else [])]
    before, wall = _cpu(), time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    total, wall = _cpu() - before, time.perf_counter() - wall
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"system": system, "error": f"exit {proc.returncode}: {tail}"}
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"system": system, **summarise(report), "cpu_per_audio_s": total / audio_seconds,
            "decode_cpu_per_audio_s": inner["decode_cpu"] / audio_seconds, "wall_s": wall}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--manifest", default=str(DEFAULT_MANIFEST) if DEFAULT_MANIFEST.is_file() else None,
                   help="clips with transcripts (default: ../shared/realdev/manifest.jsonl where it exists)")
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list of {','.join(SYSTEMS)} (default: all)")
    p.add_argument("--report-dir", help="write each system's per-utterance report here (SYSTEM.jsonl)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    p.add_argument("--report", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.manifest:
        print("error: --manifest is required (no ../shared/realdev here)", file=sys.stderr)
        return 2
    if args.worker:
        return worker(args.worker, args.manifest, args.model, args.report)
    from speech.errors import SpeechError
    from speech.manifest import read_manifest

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        print(f"error: unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    try:
        utterances = [u for u in read_manifest(args.manifest) if u.text.strip() and not u.non_speech]
    except SpeechError as e:  # a missing or malformed manifest: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not utterances:
        print(f"error: {args.manifest} has no clip with a transcript", file=sys.stderr)
        return 2
    audio_seconds = sum(u.duration for u in utterances)
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        folder = Path(args.report_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = [run_system(s, args.manifest, args.model, str(folder / f"{s}.jsonl"), audio_seconds) for s in systems]
    print(f"{len(utterances)} clips, {audio_seconds:.1f} s of audio: {args.manifest}")
    print(f"{'system':<14}{'WER':>7}{'CER':>7}{'empty':>8}{'CPU-s/audio-s':>15}{'decoding':>10}")
    for row in rows:
        if "error" in row:
            print(f"{row['system']:<14}skipped: {row['error']}")
            continue
        print(f"{row['system']:<14}{row['wer']:>7.3f}{row['cer']:>7.3f}{row['empty_share']:>8.1%}"
              f"{row['cpu_per_audio_s']:>15.4f}{row['decode_cpu_per_audio_s']:>10.4f}")
    if args.json:
        command = "python scripts/bench_real.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.json).write_text(json.dumps({"manifest": args.manifest, "audio_seconds": audio_seconds,
                                               "command": command, "systems": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
