"""``python -m speech <verb>``: one command-line entry point; each verb's job lives in ``pipelines/``."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from speech.errors import SpeechError

VERBS = {
    "prepare": ("pipelines.prepare", "convert a corpus layout on disk into a JSON-lines manifest"),
    "synth": ("pipelines.synth_corpus", "generate the built-in synthetic English corpus with offline TTS"),
    "featurize": ("pipelines.featurize", "extract features once into TFRecord shards for (many) trainers"),
    "train": ("pipelines.train", "train an LSTM-CTC model from manifests"),
    "evaluate": ("pipelines.evaluate", "WER/CER of a model on a manifest"),
    "compare": ("pipelines.compare", "is one model's WER really lower than another's? (paired bootstrap)"),
    "transcribe": ("pipelines.transcribe", "transcribe audio files, folders, lists or manifests"),
    "export": ("pipelines.export", "export a SavedModel for TensorFlow Serving"),
}


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))


def run_job(job: Callable[[], int]) -> int:
    """Run a job; a user error becomes one line on stderr and exit code 2, never a stack trace."""
    try:
        return job()
    except SpeechError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        lines = ["usage: python -m speech <verb> [options]   (python -m speech <verb> --help for each)", "", "verbs:"]
        lines += [f"  {verb:<11} {help_}" for verb, (_, help_) in VERBS.items()]
        print("\n".join(lines), file=sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module = importlib.import_module(VERBS[argv[0]][0])
    return module.main(argv[1:])
