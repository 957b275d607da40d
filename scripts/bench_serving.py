#!/usr/bin/env python3
"""The served model against the CLI: the SavedModel's ``serving_default`` (LM beam search in the graph) and ``greedy``
signatures, loaded by plain TensorFlow in a process that cannot import this project, beside ``speech transcribe``'s
default decoding, on the same clips.

    .venv/bin/python scripts/bench_serving.py --manifest ../shared/realdev/manifest.jsonl
    .venv/bin/python scripts/bench_serving.py --manifest data/synth/test.jsonl

Prints WER and CER of each, the share of transcripts identical to the CLI's, the export's size (and what the LM's
tables add to it), and the median latency of a one-file request to each signature. Clips go to the server as 16-bit
WAV bytes at their own sample rate (the graph parses and resamples them), as a TF Serving client sends them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The client: plain TensorFlow and numpy; importing this project fails in it (its modules are blocked).
CLIENT = r"""
import json, pickle, statistics, sys, time
sys.modules["speech"] = None
sys.modules["pipelines"] = None
import tensorflow as tf

model_dir, request_path, out_path = sys.argv[1:4]
clips = pickle.load(open(request_path, "rb"))
model = tf.saved_model.load(model_dir)
result = {}
for name in ("serving_default", "greedy"):
    serve = model.signatures[name]
    texts = []
    for start in range(0, len(clips), 8):
        out = serve(audio=tf.constant(clips[start:start + 8]))
        texts += [t.decode() for t in out["transcript"].numpy()]
    latencies = []
    for clip in clips[:20]:
        begin = time.perf_counter()
        serve(audio=tf.constant([clip]))
        latencies.append(time.perf_counter() - begin)
    result[name] = {"texts": texts, "latency_ms": 1000 * statistics.median(latencies)}
json.dump(result, open(out_path, "w"))
"""


def _wav_bytes(path: str) -> bytes:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True, help="clips with reference texts (JSON lines)")
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--limit", type=int, default=0, help="only the first N clips (0: all)")
    args = p.parse_args(argv)

    import pickle

    from speech.errors import SpeechError
    from speech.export import export_saved_model
    from speech.manifest import read_manifest
    from speech.metrics import error_rates
    from speech.transcribe import Transcriber

    try:
        utterances = [u for u in read_manifest(args.manifest) if u.text]
    except (SpeechError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    utterances = utterances[: args.limit] if args.limit else utterances
    references = [u.text for u in utterances]
    transcriber = Transcriber(args.model)
    cli = [t.text for t in transcriber.transcribe_files([u.audio_filepath for u in utterances], jobs=1)]
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        tmp = Path(tmp)
        version = export_saved_model(args.model, tmp / "export")
        request = tmp / "clips.pkl"
        request.write_bytes(pickle.dumps([_wav_bytes(u.audio_filepath) for u in utterances]))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([sys.executable, "-c", CLIENT, str(version), str(request), str(tmp / "out.json")], cwd=tmp,
                       env=env, check=True)
        served = json.loads((tmp / "out.json").read_text())
        sizes = {"graph (saved_model.pb, with the LM's tables)": (version / "saved_model.pb").stat().st_size / 1e6,
                 "variables (the network)": _size_mb(version / "variables"),
                 "assets.extra (config, lm.npz for decoders outside the graph)": _size_mb(version / "assets.extra")}
    print(f"{len(utterances)} clips of {args.manifest}")
    rows = [("speech transcribe (default)", cli, None), ("served: serving_default", served["serving_default"]["texts"],
            served["serving_default"]["latency_ms"]), ("served: greedy", served["greedy"]["texts"],
                                                        served["greedy"]["latency_ms"])]
    for name, texts, latency in rows:
        rates = error_rates(references, texts)
        same = sum(a == b for a, b in zip(texts, cli)) / len(cli)
        timing = f", median one-file request {latency:.0f} ms" if latency is not None else ""
        print(f"  {name:<30s} WER {rates['wer']:.4f}  CER {rates['cer']:.4f}  identical to the CLI {same:.1%}{timing}")
    for name, mb in sizes.items():
        print(f"  export size, {name}: {mb:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
